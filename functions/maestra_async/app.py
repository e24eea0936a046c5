"""Maestra ``POST /v3/operations/async``: check the request, queue it, answer ``Success`` at once.

Everything sync would refuse before performing a step is refused here, in the same answer: the
credentials, the operation, the body's fields and the table, the effective time, and a
transactionId already used with another body. A transactionId already used with this body was
performed: nothing is queued again.

The worker (functions/maestra_worker) performs it exactly once: the queued message carries an
idempotency key (the client's transactionId, or one made here) that the store's receipt guards.
"""

import uuid
from typing import Any

from promo.protocols import maestra
from promo.services import Services, issuing


@maestra.endpoint
def handler(call: maestra.OperationCall, svc: Services) -> dict[str, Any]:
    step = call.step()  # the mandatory / disallowed table is answered now, not lost in the queue
    if not issuing.already_performed(svc, step):
        svc.send(maestra.to_message(call, call.transaction_id or f"async-{uuid.uuid4()}"))
    return {"status": "Success"}
