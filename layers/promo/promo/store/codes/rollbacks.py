"""Redemption rollback: one redemption given back, recorded with its reason and actor.

A rollback is rare, so it reads the code and writes on condition that its uses are still
those read: a redeem racing it fails that write, and the rollback reads again, so no use is
lost or doubled. Like every write, it stamps its own token, so a retry that meets it is its
success; with an idempotency receipt it is one transaction with the receipt's put.
"""

import random
import time
import uuid

from promo.domain import clock
from promo.domain.errors import AlreadyDone, CodeNotFound, NothingToRollBack, StoreUnavailable
from promo.domain.models import ActivityState, Code, CodeState, Issuance
from promo.store import keys
from promo.store.codes.naming import CodeKeys, pointed_value
from promo.store.codes.receipts import recorded, write_change
from promo.store.codes.visibility import BatchOutcomes
from promo.store.items import Item, code_from_item, n, s
from promo.store.table import ConditionFailed, Table

# Reads and writes a rollback tries before it reports the code too busy to change.
_ROLLBACK_TRIES = 12
_BACKOFF_SECONDS = 0.01


class Rollbacks:
    def __init__(self, table: Table, outcomes: BatchOutcomes, code_keys: CodeKeys) -> None:
        self._table = table
        self._outcomes = outcomes
        self._keys = code_keys

    def roll_back_redemption(
        self, tenant_id: str, value: str, issuance: Issuance, reason: str
    ) -> Code:
        """Give one redemption back: a spent single-use code is ISSUED again, a multi-use code
        gets a use back."""
        key = self._keys.key(tenant_id, value)
        for attempt in range(1, _ROLLBACK_TRIES + 1):
            item = self._table.get(key)
            target = None if item is None else pointed_value(item)
            if target is not None:  # a code the tenant held before it became insensitive
                key = keys.code_key(tenant_id, target)
                item = self._table.get(key)
            if item is None or not self._outcomes.visible(item):
                raise CodeNotFound
            code = code_from_item(item)
            given = len(item.get("redemptions", {}).get("L", [])) or 1  # legacy: one, unlisted
            taken_back = len(item.get("rollbacks", {}).get("L", []))
            if code.state is not CodeState.USED or code.is_deleted or taken_back >= given:
                self._replay_if_done(tenant_id, issuance)
                raise NothingToRollBack(code=code)
            try:
                return code_from_item(
                    self._roll_back(key, item, issuance, reason, still_used=given - taken_back > 1)
                )
            except ConditionFailed:
                # A redemption or another rollback came between the read and the write: wait
                # a moment, jittered so racing rollbacks spread out, and read again.
                time.sleep(random.uniform(0, _BACKOFF_SECONDS * attempt))  # noqa: S311
                continue
        raise StoreUnavailable("Too many concurrent changes of this code; retry.")

    def _replay_if_done(self, tenant_id: str, issuance: Issuance) -> None:
        """A retry of a rollback that already gave its use back finds the code with nothing
        left to roll back; its receipt says it was this request's own success."""
        if issuance.receipt is not None:
            earlier = recorded(self._table, tenant_id, issuance.receipt)
            if earlier is not None:
                raise AlreadyDone(earlier)

    def _roll_back(
        self, key: Item, item: Item, issuance: Issuance, reason: str, still_used: bool
    ) -> Item:
        record: Item = {
            "at": s(clock.to_stored(issuance.at)),
            "actor": s(issuance.actor),
            "reason": s(reason),
        }
        values: Item = {
            ":used": s(CodeState.USED),
            ":active": s(ActivityState.ACTIVE),
            ":target": s(CodeState.USED if still_used else CodeState.ISSUED),
            ":uses_left": n(int(item.get("uses_left", {"N": "0"})["N"]) + 1),
            ":rollback": {"L": [{"M": record}]},
            ":no_rollbacks": {"L": []},
            ":now": s(clock.to_stored(clock.now())),
            ":actor": s(issuance.actor),
            ":request": s(uuid.uuid4().hex),
        }
        if "uses_left" in item:
            values[":uses_read"] = item["uses_left"]
            unchanged = "uses_left = :uses_read"
        else:
            unchanged = "attribute_not_exists(uses_left)"
        update: Item = {
            "Key": key,
            "ConditionExpression": f"#state = :used AND activity = :active AND {unchanged}",
            "UpdateExpression": (
                "SET #state = :target, uses_left = :uses_left, updated_at = :now,"
                " updated_by = :actor, last_request = :request,"
                " rollbacks = list_append(if_not_exists(rollbacks, :no_rollbacks), :rollback)"
            ),
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        return write_change(self._table, update, issuance.receipt)
