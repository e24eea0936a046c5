"""The queue behind asynchronous operations (SQS on AWS).

``send`` is the only way code puts work on it. The local stack, which has no SQS, replaces the
sender with an in-process queue that feeds the same worker handler (tools/local_stack.py).
"""

import json
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from promo import aws
from promo.domain.errors import StoreUnavailable
from promo.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

Sender = Callable[[dict[str, Any]], None]
_override: list[Sender] = []


@cache
def _sqs() -> "SQSClient":
    return cast("SQSClient", aws.client("sqs", get_settings().aws_region))


def use_sender(sender: Sender | None) -> None:
    """Send through ``sender`` instead of SQS (None restores SQS)."""
    _override.clear()
    if sender is not None:
        _override.append(sender)


def send(message: dict[str, Any]) -> None:
    if _override:
        _override[0](message)
        return
    url = get_settings().async_queue_url
    if url is None:
        raise StoreUnavailable("No queue is configured for asynchronous operations.")
    try:
        _sqs().send_message(QueueUrl=url, MessageBody=json.dumps(message))
    except Exception as exc:
        raise StoreUnavailable(f"Queueing failed: {type(exc).__name__}") from exc
