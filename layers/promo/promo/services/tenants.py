"""Tenants as operators write them, and the one setting that changes how codes are keyed:
``case_sensitive`` (``docs/values.md``, Case-insensitive tenants)."""

from collections import defaultdict
from collections.abc import Callable

from promo.domain.errors import CaseRuleRefused
from promo.domain.models import Tenant
from promo.domain.values import fold_value
from promo.store.catalog import CatalogStore
from promo.store.codes import CodeStore


def put_tenant(
    catalog: CatalogStore, codes: CodeStore, tenant: Tenant, settle: Callable[[], None]
) -> None:
    """Write ``tenant``. A change of ``case_sensitive`` is refused, naming the values in the
    way (``CaseRuleRefused``), unless every code stays reachable under the new rule and no two
    codes become one: to insensitive, the codes held are given pointers at their folded keys
    first; back to sensitive, only a tenant whose every value is its own fold can go.

    After a switch to insensitive, ``settle()`` waits until no function still reads the tenant
    as it was (their cache: ``CONFIG_CACHE_SECONDS``); codes such a function added meanwhile
    are keyed by their value as sent, so they get their pointers then, and any that collide
    are named (``CaseRuleRefused``; the tenant is insensitive by then, and keeps its pointers)."""
    current = catalog.get_tenant(tenant.tenant_id)
    if current is None or current.case_sensitive == tenant.case_sensitive:
        catalog.put_tenant(tenant)
        return
    values = held_values(catalog, codes, tenant.tenant_id)
    if tenant.case_sensitive:
        folded = [value for value in values if fold_value(value) != value]
        if folded:
            raise CaseRuleRefused(
                "Codes of a case-insensitive tenant are keyed by their folded values, so it "
                "stays insensitive while it holds values that differ from their fold",
                folded,
            )
        catalog.put_tenant(tenant)
        return
    by_fold: defaultdict[str, list[str]] = defaultdict(list)
    for value in values:
        by_fold[fold_value(value)].append(value)
    colliding = [value for group in by_fold.values() if len(group) > 1 for value in group]
    if colliding:
        raise CaseRuleRefused("Values collide when case is ignored", colliding)
    codes.point_folded(tenant.tenant_id, [v for v in values if fold_value(v) != v], True)
    catalog.put_tenant(tenant)
    settle()
    known = set(values)
    late = [v for v in held_values(catalog, codes, tenant.tenant_id) if v not in known]
    try:
        codes.point_folded(tenant.tenant_id, [v for v in late if fold_value(v) != v], False)
    except CaseRuleRefused as late_collision:
        raise CaseRuleRefused(
            "The tenant is case-insensitive now, but codes added while the switch took effect "
            "collide when case is ignored (delete all but one of each)",
            late_collision.values,
        ) from None


def held_values(catalog: CatalogStore, codes: CodeStore, tenant_id: str) -> list[str]:
    """Every value the tenant holds, deleted codes included (their keys stay taken)."""
    pool_ids = [pool.pool_id for pool in catalog.list_pools(tenant_id)]
    return [code.value for _, code in codes.list(tenant_id, pool_ids)]
