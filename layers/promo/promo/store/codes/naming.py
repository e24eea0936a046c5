"""Where a tenant keys the code of a value (``docs/values.md``, Case-insensitive tenants).

A case-sensitive tenant keys a code by its value. An insensitive one keys it by the value's
fold (``fold_value``), so two values with one fold meet at one key: the second is a duplicate by
the same ``attribute_not_exists`` condition that keeps values unique today, whatever the
concurrency, and every lookup of any spelling is the one read of that key. The item keeps the
value as it was added.

Codes a tenant held before it became insensitive stay at their own keys. The switch writes at
each one's folded key (where it differs) a pointer item that names it (``points_to``); a reader
or writer that meets a pointer goes on to the code it names: one request more, for those codes
only. A pointer has no state, so no transition's condition can ever hold on one.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from promo.domain.errors import CaseRuleRefused, ConcurrentChange
from promo.domain.values import fold_value
from promo.store import keys
from promo.store.items import Item, s
from promo.store.table import ConditionFailed, Table

POINTS_TO = "points_to"


class TenantRules(Protocol):
    """What a function knows of a tenant's case rule (``CatalogStore``, cached for the TTL)."""

    def case_sensitive(self, tenant_id: str) -> bool: ...

    def adds_paused_until(self, tenant_id: str) -> datetime | None: ...


class CodeKeys:
    def __init__(self, rules: TenantRules) -> None:
        self._rules = rules

    def keyed_value(self, tenant_id: str, value: str) -> str:
        """The value as the tenant's key spells it."""
        return value if self._rules.case_sensitive(tenant_id) else fold_value(value)

    def key(self, tenant_id: str, value: str) -> Item:
        return keys.code_key(tenant_id, self.keyed_value(tenant_id, value))

    def check_adds_allowed(self, tenant_id: str) -> None:
        """ConcurrentChange while this function knows the tenant's case rule is being switched:
        a code added now could be keyed by the rule that is ending and be missed by the switch's
        last check (``services.tenants.put_tenant``)."""
        until = self._rules.adds_paused_until(tenant_id)
        if until is not None:
            raise ConcurrentChange(
                [],
                "The tenant's case rule is being switched; no code is added until it is done "
                f"({until:%Y-%m-%d %H:%M:%S} UTC at the latest)",
            )


def pointed_value(item: Item) -> str | None:
    """The value of the code a pointer item names; None for a code."""
    target = item.get(POINTS_TO)
    return None if target is None else str(target["S"])


def pointer_item(tenant_id: str, value: str) -> Item:
    """The pointer, at ``value``'s folded key, to the code keyed by ``value`` itself."""
    return {
        **keys.code_key(tenant_id, fold_value(value)),
        "tenant": s(tenant_id),
        POINTS_TO: s(value),
    }


class CaseFolding:
    """The pointers a switch to case-insensitive writes for the codes the tenant holds."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def point_folded(self, tenant_id: str, values: Sequence[str]) -> None:
        """A pointer at each value's folded key, each conditional on the key being free (or
        already pointing there: a repeated switch), so a code or pointer met there is a
        collision, unless it is the code itself (added already keyed by its fold).
        Collisions are refused, naming both values, once the pointers this call wrote are
        deleted, so a refused switch leaves nothing behind."""
        written: list[str] = []
        collisions: list[str] = []
        for value in values:
            try:
                self._table.put(
                    Item=pointer_item(tenant_id, value),
                    ConditionExpression=f"attribute_not_exists(pk) OR {POINTS_TO} = :value",
                    ExpressionAttributeValues={":value": s(value)},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                written.append(value)
            except ConditionFailed as failed:
                held = failed.item or {}
                other = pointed_value(held) or held.get("value", {}).get("S", "?")
                if other != value:
                    collisions += [value, other]
        if not collisions:
            return
        self.unpoint_folded(tenant_id, written)
        raise CaseRuleRefused("Values collide when case is ignored", collisions)

    def unpoint_folded(self, tenant_id: str, values: Sequence[str]) -> None:
        """Delete the pointers at these values' folded keys (a switch given up), each only if
        it still names its value."""
        for value in values:
            try:
                self._table.delete(
                    Key=keys.code_key(tenant_id, fold_value(value)),
                    ConditionExpression=f"{POINTS_TO} = :value",
                    ExpressionAttributeValues={":value": s(value)},
                )
            except ConditionFailed:
                continue
