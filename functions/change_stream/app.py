"""The table's change stream (DynamoDB Streams event source): per-pool inventory counts and
domain events, off the claim path (``promo.services.inventory``).

Partial batch responses: a batch is answered with the record from which it must be delivered
again, if any. Counting is idempotent per record, so what is delivered again is never counted
twice; events are published at least once, under ids a repeat keeps.
"""

from typing import Any

from promo import bootstrap
from promo.endpoint import queue_consumer
from promo.services import inventory


@queue_consumer
def handler(event: dict[str, Any]) -> dict[str, Any]:
    outcome = inventory.consume(bootstrap.services(), event.get("Records", []))
    failed = [] if outcome.retry_from is None else [{"itemIdentifier": outcome.retry_from}]
    return {"batchItemFailures": failed}
