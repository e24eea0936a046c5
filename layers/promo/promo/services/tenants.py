"""Tenants as operators write them, and the one setting that changes how codes are keyed:
``case_sensitive`` (``docs/values.md``, Case-insensitive tenants).

A switch of that setting must not let two codes end up with one folded value, although every
function reads the tenant from a cache that may be ``CONFIG_CACHE_SECONDS`` old. So a switch
first marks the tenant: a function that has read the mark adds no code until the switch is done,
and one that has not still adds under the old rule, as it always did. Once every function has
read the mark and every add begun before it has ended (``SwitchWait``), the codes are listed a
second time, complete; only then does the new rule take effect, or the switch is given up, with
nothing changed, naming the values in the way.
"""

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import NamedTuple

from promo.domain import clock
from promo.domain.errors import CaseRuleRefused, ConcurrentChange
from promo.domain.models import Tenant
from promo.domain.values import fold_value
from promo.settings import Settings
from promo.store.catalog import CatalogStore
from promo.store.codes import CodeStore

# Beyond the staged-add expiry: a small add's transaction, retried, lands within this.
_ADD_MARGIN_SECONDS = 5.0
# The mark outlives the switch's expected length by this much at least, so a slow listing does
# not see it lapse; if the switch's process dies, adds resume at the latest this much later.
_MARK_SPARE_SECONDS = 60.0


class SwitchWait(NamedTuple):
    """How long a switch waits between marking the tenant and its last listing, and how."""

    seconds: float
    wait: Callable[[float], None] = time.sleep

    @classmethod
    def for_settings(cls, settings: Settings) -> "SwitchWait":
        """Every function's cached tenant expires (``CONFIG_CACHE_SECONDS``), and every add
        begun before it did ends (a stage expires, ``STAGED_WRITE_EXPIRY_SECONDS``)."""
        return cls(
            settings.config_cache_seconds
            + settings.staged_write_expiry_seconds
            + _ADD_MARGIN_SECONDS
        )


def put_tenant(catalog: CatalogStore, codes: CodeStore, tenant: Tenant, settle: SwitchWait) -> None:
    """Write ``tenant``. A change of ``case_sensitive`` takes effect only if every code stays
    reachable under the new rule and no two codes become one: to insensitive, the codes held
    are given pointers at their folded keys; back to sensitive, only a tenant whose every value
    is its own fold can go. Otherwise ``CaseRuleRefused`` names the values in the way and the
    tenant keeps its rule, and no pointer is left behind."""
    current = catalog.get_tenant(tenant.tenant_id)
    if current is None or current.case_sensitive == tenant.case_sensitive:
        catalog.put_tenant(tenant)
        return
    started = time.monotonic()
    values = held_values(catalog, codes, tenant.tenant_id)
    listing = time.monotonic() - started
    _refuse_blocking(values, tenant.case_sensitive)
    span = settle.seconds + 2 * listing + _MARK_SPARE_SECONDS
    marked = catalog.begin_case_switch(current, clock.now() + timedelta(seconds=span))
    pointed: list[str] = []
    try:
        pointed += _point(codes, tenant, values)
        settle.wait(settle.seconds)
        known = set(values)
        late = [v for v in held_values(catalog, codes, tenant.tenant_id) if v not in known]
        _refuse_blocking([*values, *late], tenant.case_sensitive)
        pointed += _point(codes, tenant, late)
        if marked.case_switch_until is None or clock.now() >= marked.case_switch_until:
            raise ConcurrentChange([], "The switch outlasted its mark; run it again")
        catalog.end_case_switch(marked, tenant)
    except BaseException:
        codes.unpoint_folded(tenant.tenant_id, pointed)
        catalog.end_case_switch(marked, current)
        raise


def held_values(catalog: CatalogStore, codes: CodeStore, tenant_id: str) -> list[str]:
    """Every value the tenant holds, deleted codes included (their keys stay taken)."""
    pool_ids = [pool.pool_id for pool in catalog.list_pools(tenant_id)]
    return [code.value for _, code in codes.list(tenant_id, pool_ids)]


def _refuse_blocking(values: Iterable[str], case_sensitive: bool) -> None:
    if case_sensitive:
        folded = [value for value in values if fold_value(value) != value]
        if folded:
            raise CaseRuleRefused(
                "Codes of a case-insensitive tenant are keyed by their folded values, so it "
                "stays insensitive while it holds values that differ from their fold",
                folded,
            )
        return
    by_fold: defaultdict[str, list[str]] = defaultdict(list)
    for value in values:
        by_fold[fold_value(value)].append(value)
    colliding = [value for group in by_fold.values() if len(group) > 1 for value in group]
    if colliding:
        raise CaseRuleRefused("Values collide when case is ignored", colliding)


def _point(codes: CodeStore, tenant: Tenant, values: list[str]) -> list[str]:
    """Pointers at the folded keys of ``values`` for a switch to insensitive; the values given
    pointers (a collision met by their own conditions refuses, taking back what it wrote)."""
    if tenant.case_sensitive:
        return []
    unfolded = [value for value in values if fold_value(value) != value]
    codes.point_folded(tenant.tenant_id, unfolded)
    return unfolded
