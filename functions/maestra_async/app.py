"""Maestra ``POST /v3/operations/async``: check the request, queue it, answer ``Success`` at once.

The worker (functions/maestra_worker) performs it exactly once: the queued message carries an
idempotency key (the client's transactionId, or one made here) that the store's receipt guards.
"""

import uuid
from typing import Any

from promo.protocols import maestra
from promo.services import Services


@maestra.endpoint
def handler(call: maestra.OperationCall, svc: Services) -> dict[str, Any]:
    call.step()  # the mandatory / disallowed table is answered now, not lost in the queue
    svc.send(maestra.to_message(call, call.transaction_id or f"async-{uuid.uuid4()}"))
    return {"status": "Success"}
