"""Pools by the names protocols give them."""

from collections.abc import Collection

from promo.domain.errors import (
    PoolNotFound,
)
from promo.domain.models import (
    Pool,
)
from promo.services import Services
from promo.store.catalog import CatalogStore


def resolve_pools(
    catalog: CatalogStore, tenant_id: str, protocol: str, aliases: Collection[str]
) -> dict[str, Pool]:
    """Pools by alias; PoolNotFound naming every alias that is not a pool of the tenant."""
    found = {alias: catalog.find_pool(tenant_id, protocol, alias) for alias in aliases}
    missing = sorted(alias for alias, pool in found.items() if pool is None)
    if missing:
        raise PoolNotFound("Unknown pools: " + ", ".join(missing))
    return {alias: pool for alias, pool in found.items() if pool is not None}


def find_pool(svc: Services, tenant_id: str, protocol: str, alias: str) -> Pool:
    pool = svc.catalog.find_pool(tenant_id, protocol, alias)
    if pool is None:
        raise PoolNotFound
    return pool
