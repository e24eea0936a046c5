"""The queue behind asynchronous operations (SQS on AWS).

A ``QueueSender`` is the only way code puts work on it. The local stack, which has no SQS, builds
the services with a sender of its own that feeds the same worker handler in-process
(tools/local_stack.py). ``sam local`` has no queue either: ``config/sam-local.json`` unsets the
URL (``!Ref`` of the queue would otherwise be its logical id), and a send is refused as
``NoAsyncQueue`` before anything is sent.
"""

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from promo import aws
from promo.domain.errors import NoAsyncQueue, StoreUnavailable
from promo.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

Sender = Callable[[dict[str, Any]], None]

# Only Maestra's async route sends, so the answer can say what to do instead.
NO_QUEUE = (
    "Asynchronous operations need the stack's SQS queue, which this environment does not have"
    " (sam local runs none): nothing was done. Send the operation to /v3/operations/sync"
    " instead; `make run` performs asynchronous operations end to end."
)


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
            raise NoAsyncQueue(NO_QUEUE)
        try:
            self._sqs().send_message(QueueUrl=self._url, MessageBody=json.dumps(message))
        except Exception as exc:
            raise StoreUnavailable(f"Queueing failed: {type(exc).__name__}") from exc

    def _sqs(self) -> "SQSClient":
        with self._lock:
            if self._client is None:
                self._client = cast("SQSClient", aws.client(self._session, "sqs", self._region))
            return self._client
