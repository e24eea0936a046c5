"""Reading an idempotency receipt without writing: whether a key was already used, and for
what request. The receipts themselves are written with the change they prove
(``promo.store.codes.receipts``); this read lets a caller refuse a reused key before it queues
work (Maestra's ``/async``)."""

from promo.domain.models import Receipt
from promo.store import keys
from promo.store.table import Table


def stored_receipt(table: Table, tenant_id: str, scope: str, key: str) -> Receipt | None:
    """The receipt of ``key`` in ``scope``, as the store holds it, or None: one strongly
    consistent read. A receipt past its TTL that DynamoDB has not removed yet still counts,
    as it does for the write it guards."""
    item = table.get(keys.receipt_key(tenant_id, scope, key))
    if item is None:
        return None
    return Receipt(scope, key, item["fingerprint"]["S"], item["value"]["S"])
