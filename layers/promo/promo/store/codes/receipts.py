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


def transact_change(table: Table, actions: list[Item], key: Item, receipt: Receipt | None) -> None:
    """``actions`` (the first on the code ``key``) and, with a receipt, the receipt's put,
    atomically. AlreadyDone if the idempotency key was used; ConditionFailed naming the first
    action whose condition failed (with the item as it was, where DynamoDB returned it)."""
    puts = [] if receipt is None else [_receipt_put(table, key, receipt)]
    try:
        table.transact([*actions, *puts])
    except TransactionCancelled as cancelled:
        reasons = [*cancelled.reasons, *([{}] * (len(actions) + 1))]
        if receipt is not None and _failed(reasons[len(actions)]):
            item = reasons[len(actions)].get("Item")
            raise AlreadyDone(_receipt_from_item(item, receipt)) from None
        for index, reason in enumerate(reasons[: len(actions)]):
            if _failed(reason):
                raise ConditionFailed(reason.get("Item"), index) from None
        raise StoreUnavailable("The transaction was cancelled; retry.") from None


def write_change(table: Table, update: Item, receipt: Receipt | None) -> Item:
    """One conditional UpdateItem of a code (with a receipt, in a transaction with the
    receipt's put), answered with the code as written. The update stamps its own token
    (``:request`` into ``last_request``), so a write that landed but whose answer was lost is
    recognised when botocore's retry fails its condition, and answered as the success it was."""
    token = update["ExpressionAttributeValues"][":request"]
    try:
        if receipt is None:
            return table.update(**update, ReturnValues="ALL_NEW")
        action = {"Update": {"TableName": table.name, **update}}
        transact_change(table, [action], update["Key"], receipt)
    except ConditionFailed as failed:
        if failed.item is None or failed.item.get("last_request") != token:
            raise
        return failed.item
    return table.get(update["Key"]) or {}


def recorded(table: Table, tenant_id: str, receipt: Receipt) -> Receipt | None:
    """The receipt an earlier request with this idempotency key left, if any."""
    item = table.get(keys.receipt_key(tenant_id, receipt.scope, receipt.key))
    return None if item is None else _receipt_from_item(item, receipt)


def _failed(reason: Item) -> bool:
    return reason.get("Code") == "ConditionalCheckFailed"


def _receipt_put(table: Table, key: Item, receipt: Receipt) -> Item:
    tenant_id, value = key["pk"]["S"][2:].split("#V#", 1)
    item: Item = {
        **keys.receipt_key(tenant_id, receipt.scope, receipt.key),
        "fingerprint": s(receipt.fingerprint),
        "value": s(value),
        "created_at": s(clock.to_stored(clock.now())),
        "expires_at": n(int(time.time()) + _RECEIPT_SECONDS),
    }
    return {
        "Put": {
            "TableName": table.name,
            "Item": item,
            "ConditionExpression": NEW_ITEM,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _receipt_from_item(item: Item | None, asked: Receipt) -> Receipt:
    if item is None:
        return asked
    return Receipt(asked.scope, asked.key, item["fingerprint"]["S"], item["value"]["S"])
