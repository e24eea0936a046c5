"""Reservations: one use of a code held for a holder until a deadline, with one conditional
write each way.

A hold takes a free use out of ``uses_left`` and records the holder and deadline on the code
(``promo.store.keys.hold_attribute``); nobody else can take that use while the hold lasts. The
holder's redemption takes the held use (``transitions``), a release gives it back, and after
the deadline any redemption or reservation that finds no free use takes it over: the deadline
is compared by the write's condition, so no job ever sweeps expired holds. Like every write,
each stamps its own token, so a retry that meets it is its success; with an idempotency
receipt it is one transaction with the receipt's put.
"""

import uuid
from datetime import datetime

from promo.domain import clock
from promo.domain.errors import CodeNotFound, NothingHeld, NoUseToHold, StoreUnavailable
from promo.domain.models import ActivityState, Code, CodeState, Issuance, Recipient
from promo.store import keys
from promo.store.codes.naming import CodeKeys, pointed_value
from promo.store.codes.receipts import write_change
from promo.store.codes.transitions import AVAILABLE_ATTRIBUTES, held_use
from promo.store.codes.visibility import BatchOutcomes, settled
from promo.store.items import Item, code_from_item, n, s
from promo.store.table import ConditionFailed, Table

# A free use: never redeemed or held (no ``uses_left``) and not used, or uses left.
_FREE_USE = (
    "((#state IN (:available, :issued) AND (attribute_not_exists(uses_left) OR uses_left > :none))"
    " OR (#state = :used AND uses_left > :none))"
)
_VALID_AT = (
    "(attribute_not_exists(valid_from) OR valid_from <= :at)"
    " AND (attribute_not_exists(valid_until) OR valid_until >= :at)"
)


class Reservations:
    def __init__(self, table: Table, outcomes: BatchOutcomes, code_keys: CodeKeys) -> None:
        self._table = table
        self._outcomes = outcomes
        self._keys = code_keys

    def reserve(self, tenant_id: str, value: str, issuance: Issuance, until: datetime) -> Code:
        """Hold one use of the code for ``issuance.recipient`` until ``until``: a free use, or
        one whose hold expired. A holder who holds one already has its deadline moved."""
        assert issuance.recipient is not None
        key = self._keys.key(tenant_id, value)
        mine = _attribute(issuance.recipient)
        batch: str | None = None
        taking: tuple[str, str] | None = None  # an expired hold being taken over
        for _ in range(4):
            update = _hold_update(key, mine, issuance, until, batch, taking)
            try:
                return code_from_item(write_change(self._table, update, issuance.receipt))
            except ConditionFailed as failed:
                item = failed.item
                if item is None:
                    raise CodeNotFound from None
                target = pointed_value(item)
                if target is not None:  # a code the tenant held before it became insensitive
                    key = keys.code_key(tenant_id, target)
                    continue
                staged = item.get("staged_batch", {}).get("S")
                if staged is not None and staged != batch:
                    if not self._outcomes.visible(item):
                        raise CodeNotFound from None
                    batch = staged  # its batch committed: the code is real, write it as such
                    continue
                if mine in item and item["activity"]["S"] == ActivityState.ACTIVE:
                    return self._extend(key, mine, item, issuance, until)
                expired = held_use(item, issuance._replace(recipient=None))
                if expired is None or expired == taking:
                    raise NoUseToHold(code=code_from_item(item)) from None
                taking = expired
        raise StoreUnavailable("Too many concurrent changes of this code; retry.")

    def release(self, tenant_id: str, value: str, issuance: Issuance) -> Code:
        """Give the use held for ``issuance.recipient`` back to the code."""
        assert issuance.recipient is not None
        values = {**_stamp(issuance), ":one": n(1)}
        update: Item = {
            "Key": self._keys.key(tenant_id, value),
            "ConditionExpression": "attribute_exists(#mine)",
            "UpdateExpression": (
                "SET uses_left = uses_left + :one, updated_at = :now, updated_by = :actor,"
                " last_request = :request REMOVE #mine"
            ),
            "ExpressionAttributeNames": {"#mine": _attribute(issuance.recipient)},
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        for _ in range(2):
            try:
                return code_from_item(write_change(self._table, update, issuance.receipt))
            except ConditionFailed as failed:
                if failed.item is None or not self._outcomes.visible(failed.item):
                    raise CodeNotFound from None
                target = pointed_value(failed.item)
                if target is None:
                    raise NothingHeld(code=code_from_item(failed.item)) from None
                update["Key"] = keys.code_key(tenant_id, target)  # held before the switch
        raise CodeNotFound

    def _extend(
        self, key: Item, mine: str, item: Item, issuance: Issuance, until: datetime
    ) -> Code:
        """Move the deadline of the holder's hold, as read: a hold taken over or released
        meanwhile is not brought back."""
        assert issuance.recipient is not None
        values = {
            **_stamp(issuance),
            ":read": item[mine]["M"]["held_until"],
            ":hold": _hold(issuance.recipient, until, issuance),
        }
        update: Item = {
            "Key": key,
            "ConditionExpression": "#mine.held_until = :read",
            "UpdateExpression": (
                "SET #mine = :hold, updated_at = :now, updated_by = :actor, last_request = :request"
            ),
            "ExpressionAttributeNames": {"#mine": mine},
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            return code_from_item(write_change(self._table, update, issuance.receipt))
        except ConditionFailed as failed:
            raise NoUseToHold(code_from_item(failed.item) if failed.item else None) from None


def _hold_update(
    key: Item,
    mine: str,
    issuance: Issuance,
    until: datetime,
    batch: str | None,
    taking: tuple[str, str] | None,
) -> Item:
    """The write taking a use for the holder: a free one, or the expired hold ``taking``."""
    assert issuance.recipient is not None
    condition_settled, settled_values, removals = settled(batch)
    names = {"#state": "state", "#mine": mine}
    values: Item = {
        **_stamp(issuance),
        **settled_values,
        ":active": s(ActivityState.ACTIVE),
        ":at": s(clock.to_stored(issuance.at)),
        ":hold": _hold(issuance.recipient, until, issuance),
        ":available": s(CodeState.AVAILABLE),
        ":issued": s(CodeState.ISSUED),
        ":used": s(CodeState.USED),
    }
    assignments = "#mine = :hold, updated_at = :now, updated_by = :actor, last_request = :request"
    if taking is None:
        values[":none"], values[":one"] = n(0), n(1)
        use = _FREE_USE
        assignments += ", uses_left = if_not_exists(uses_left, :one) - :one"
    else:  # the expired hold's use was taken from ``uses_left`` already
        names["#theirs"], values[":theirs_until"] = taking[0], s(taking[1])
        use = "(#state IN (:available, :issued, :used) AND #theirs.held_until = :theirs_until)"
        removals += ", #theirs"
    return {
        "Key": key,
        "ConditionExpression": (
            f"{use} AND activity = :active AND attribute_not_exists(#mine) AND {_VALID_AT}"
            f" AND {condition_settled}"
        ),
        # A held code is no longer one a claim may hand out: it leaves the available index.
        "UpdateExpression": f"SET {assignments} REMOVE {AVAILABLE_ATTRIBUTES}{removals}",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _attribute(holder: Recipient) -> str:
    return keys.hold_attribute(holder.kind, holder.identifier)


def _hold(holder: Recipient, until: datetime, issuance: Issuance) -> Item:
    return {
        "M": {
            "kind": s(holder.kind),
            "id": s(holder.identifier),
            "held_until": s(clock.to_stored(until)),
            "at": s(clock.to_stored(issuance.at)),
            "actor": s(issuance.actor),
        }
    }


def _stamp(issuance: Issuance) -> Item:
    return {
        ":now": s(clock.to_stored(clock.now())),
        ":actor": s(issuance.actor),
        ":request": s(uuid.uuid4().hex),
    }
