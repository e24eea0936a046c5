"""Performs queued Maestra async operations (SQS event source, partial batch responses).

A message whose operation was already performed (a redelivery, or a retry after a failure that
came after the write) finds its receipt and changes nothing. Only transient store failures are
retried; after the queue's maxReceiveCount a message goes to the dead-letter queue.
"""

import json
from typing import Any

from promo import bootstrap
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
        try:
            call = maestra.from_message(svc, json.loads(record["body"]))
            outcome = issuing.perform_step(svc, call.step())
            logger.info(
                "Async operation performed",
                extra={
                    "operation": call.operation,
                    "replayed": outcome.replayed,
                    "refusal": type(outcome.refusal).__name__ if outcome.refusal else None,
                },
            )
        except StoreUnavailable:
            failures.append({"itemIdentifier": record["messageId"]})
        except PromoError as refused:  # permanent: retrying cannot help
            logger.warning("Async operation refused", extra={"reason": refused.message})
    return {"batchItemFailures": failures}
