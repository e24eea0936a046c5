"""Idempotency receipts: a request with an idempotency key changes a code in one transaction
with the put of its receipt, so a retry of the request can never change a second code."""

import time

from promo.domain import clock
from promo.domain.errors import AlreadyDone, StoreUnavailable
from promo.domain.models import Receipt
from promo.store import keys
from promo.store.codes.visibility import NEW_ITEM
from promo.store.items import Item, n, s
from promo.store.table import ConditionFailed, Table, TransactionCancelled

# Receipts of idempotent requests are kept this long (then DynamoDB's TTL removes them).
_RECEIPT_SECONDS = 7 * 24 * 3600


def transact_with_receipt(table: Table, actions: list[Item], key: Item, receipt: Receipt) -> None:
    """``actions`` (the first on the code ``key``) and the receipt's put, atomically;
    AlreadyDone if the idempotency key was used, ConditionFailed if the code refused."""
    tenant_id, value = key["pk"]["S"][2:].split("#V#", 1)
    item: Item = {
        **keys.receipt_key(tenant_id, receipt.scope, receipt.key),
        "fingerprint": s(receipt.fingerprint),
        "value": s(value),
        "created_at": s(clock.to_stored(clock.now())),
        "expires_at": n(int(time.time()) + _RECEIPT_SECONDS),
    }
    receipt_put = {
        "Put": {
            "TableName": table.name,
            "Item": item,
            "ConditionExpression": NEW_ITEM,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    try:
        table.transact([*actions, receipt_put])
    except TransactionCancelled as cancelled:
        reasons = [*cancelled.reasons, *([{}] * (len(actions) + 1))]
        receipt_reason = reasons[len(actions)]
        if receipt_reason.get("Code") == "ConditionalCheckFailed":
            raise AlreadyDone(_receipt_from_item(receipt_reason.get("Item"), receipt)) from None
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            raise ConditionFailed(reasons[0].get("Item")) from None
        raise StoreUnavailable("The transaction was cancelled; retry.") from None


def _receipt_from_item(item: Item | None, asked: Receipt) -> Receipt:
    if item is None:
        return asked
    return Receipt(asked.scope, asked.key, item["fingerprint"]["S"], item["value"]["S"])
