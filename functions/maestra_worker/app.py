"""Performs queued Maestra async operations (SQS event source, partial batch responses).

A message whose operation was already performed (a redelivery, or a retry after a failure that
came after the write) finds its receipt and changes nothing. A message the worker cannot
perform is never dropped: it is returned as a batch item failure, so SQS delivers it again and,
after the queue's maxReceiveCount, moves it to the dead-letter queue. A transient store failure
is retried that way; a refusal (a transactionId used meanwhile with another body, an operation
or endpoint removed since acceptance, a message that cannot be read) is also logged at ERROR,
naming the endpoint, operation and transactionId, and counted (``AsyncOperationsRefused``).
"""

import json
from typing import Any

from promo import bootstrap, observability
from promo.domain.errors import PromoError, StoreUnavailable
from promo.endpoint import queue_consumer
from promo.observability import logger
from promo.protocols import maestra
from promo.services import issuing


@queue_consumer
def handler(event: dict[str, Any]) -> dict[str, Any]:
    svc = bootstrap.services()
    failures = []
    for record in event.get("Records", []):
        message: dict[str, Any] = {}
        try:
            message = json.loads(record["body"])
            call = maestra.from_message(svc, message)
            outcome = issuing.perform_step(svc, call.step())
            logger.info(
                "Async operation performed",
                extra={
                    **_names(message),
                    "replayed": outcome.replayed,
                    "refusal": type(outcome.refusal).__name__ if outcome.refusal else None,
                },
            )
        except StoreUnavailable as unavailable:  # transient: SQS delivers it again
            logger.warning(
                "Async operation deferred", extra={**_names(message), "reason": unavailable.message}
            )
            failures.append({"itemIdentifier": record["messageId"]})
        except Exception as refused:  # no message may be lost silently
            _refused(record, message, refused)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def _refused(record: dict[str, Any], message: Any, refused: Exception) -> None:
    """Retrying cannot help, but dropping the message would lose a request its client was told
    was accepted: it stays on the queue, then in the dead-letter queue, and is reported here."""
    if isinstance(refused, PromoError):
        reason = refused.message
    elif isinstance(refused, (KeyError, TypeError, ValueError)):
        reason = "The queued message cannot be read."
    else:
        reason = "Unexpected failure."
    logger.error(
        "Async operation refused",
        extra={
            **_names(message),
            "refusal": type(refused).__name__,
            "reason": reason,
            "receive_count": record.get("attributes", {}).get("ApproximateReceiveCount"),
        },
        exc_info=not isinstance(refused, PromoError),
    )
    observability.count("AsyncOperationsRefused")


def _names(message: Any) -> dict[str, Any]:
    """What a log line names a queued call by: never its body (which may name a customer)."""
    if not isinstance(message, dict):
        return {}
    return {
        "endpoint": message.get("endpoint"),
        "operation": message.get("operation"),
        "transactionId": message.get("key"),
    }
