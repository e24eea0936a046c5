"""The queue behind asynchronous operations (SQS on AWS).

A ``QueueSender`` is the only way code puts work on it. The local stack, which has no SQS, builds
the services with a sender of its own that feeds the same worker handler in-process
(tools/local_stack.py).
"""

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from promo import aws
from promo.domain.errors import StoreUnavailable
from promo.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

Sender = Callable[[dict[str, Any]], None]


class QueueSender:
    """Sends to the configured SQS queue; the client is made on the first message, since only
    Maestra's async function ever sends."""

    def __init__(self, settings: Settings, session: aws.Session) -> None:
        self._url = settings.async_queue_url
        self._region = settings.aws_region
        self._session = session
        self._client: SQSClient | None = None
        self._lock = threading.Lock()

    def __call__(self, message: dict[str, Any]) -> None:
        if self._url is None:
            raise StoreUnavailable("No queue is configured for asynchronous operations.")
        try:
            self._sqs().send_message(QueueUrl=self._url, MessageBody=json.dumps(message))
        except Exception as exc:
            raise StoreUnavailable(f"Queueing failed: {type(exc).__name__}") from exc

    def _sqs(self) -> "SQSClient":
        with self._lock:
            if self._client is None:
                self._client = cast("SQSClient", aws.client(self._session, "sqs", self._region))
            return self._client
