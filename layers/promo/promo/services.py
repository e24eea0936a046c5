"""Operations shared by the protocols. A handler parses and validates its vendor's request, makes
exactly one call here, and renders the result in its vendor's format."""

import heapq
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from uuid import UUID

from promo.domain.errors import InvalidRequest, PoolNotFound
from promo.domain.models import Code, NewCode, Pool, Window
from promo.settings import get_settings
from promo.store import catalog_store, code_store, credential_store
from promo.store.catalog import CatalogStore, pool_aliases
from promo.store.codes import CodeStore
from promo.store.credentials import CredentialStore


@dataclass(frozen=True, slots=True)
class Services:
    codes: CodeStore
    catalog: CatalogStore
    credentials: CredentialStore


@cache
def services() -> Services:
    """The process-wide services over the configured table (module scope in a warm function)."""
    get_settings()  # fail at cold start, not mid-request, if the environment is wrong
    return Services(code_store(), catalog_store(), credential_store())


@dataclass(frozen=True, slots=True)
class CodeToAdd:
    """A code to add to the pool a protocol names ``pool_alias``."""

    pool_alias: str
    value: str
    validity: Window


@dataclass(frozen=True, slots=True)
class CodeQuery:
    tenant_ids: Sequence[str]
    # Pools by a protocol's alias; None: every pool of each tenant.
    pool_aliases: Collection[str] | None
    protocol: str
    code_ids: Collection[UUID] | None
    # Last update in [start, end): Mews interval filters include the start, exclude the end.
    updated: tuple[datetime, datetime] | None
    limit: int
    # The last code of the previous page, newest first.
    after: UUID | None


@dataclass(frozen=True, slots=True)
class CodePage:
    codes: list[Code]
    # The page is full, so more codes may follow it.
    more: bool


def resolve_pools(
    catalog: CatalogStore, tenant_id: str, protocol: str, aliases: Collection[str]
) -> dict[str, Pool]:
    """Pools by alias; PoolNotFound naming every alias that is not a pool of the tenant."""
    found = {alias: catalog.find_pool(tenant_id, protocol, alias) for alias in aliases}
    missing = sorted(alias for alias, pool in found.items() if pool is None)
    if missing:
        raise PoolNotFound("Unknown pools: " + ", ".join(missing))
    return {alias: pool for alias, pool in found.items() if pool is not None}


def add_codes(
    svc: Services, tenant_id: str, protocol: str, entries: Sequence[CodeToAdd], actor: str
) -> list[Code]:
    pools = resolve_pools(svc.catalog, tenant_id, protocol, {e.pool_alias for e in entries})
    new = [NewCode(pools[e.pool_alias].pool_id, e.value, e.validity) for e in entries]
    by_id = {pool.pool_id: pool for pool in pools.values()}
    return svc.codes.add(tenant_id, by_id, new, actor)


def delete_codes(svc: Services, tenant_id: str, code_ids: Sequence[UUID], actor: str) -> None:
    svc.codes.delete(tenant_id, code_ids, actor)


def list_codes(svc: Services, query: CodeQuery) -> CodePage:
    """Codes newest first across tenants and pools, resumable after any code of a page.

    The order is (creation position, tenant), both fixed at creation, so following pages
    returns every matching code exactly once while others are added, updated or deleted.
    """
    cursor = _cursor(svc, query)
    streams = [_tenant_stream(svc, query, tenant, cursor) for tenant in query.tenant_ids]
    page: list[Code] = []
    for key, code in heapq.merge(*streams, key=lambda entry: entry[0], reverse=True):
        if cursor is not None and not key < cursor:
            continue
        if query.updated is not None and not (
            query.updated[0] <= code.audit.updated_at < query.updated[1]
        ):
            continue
        page.append(code)
        if len(page) == query.limit:
            return CodePage(page, more=True)
    return CodePage(page, more=False)


Position = tuple[str, str]


def _cursor(svc: Services, query: CodeQuery) -> Position | None:
    if query.after is None:
        return None
    for tenant in query.tenant_ids:
        code = svc.codes.get_by_uuid(tenant, query.after)
        if code is not None:
            return svc.codes.position(code), tenant
    raise InvalidRequest("Limitation.Cursor names no code in scope.", "Limitation.Cursor")


def _tenant_stream(
    svc: Services, query: CodeQuery, tenant: str, cursor: Position | None
) -> Iterator[tuple[Position, Code]]:
    pools: Mapping[str, Pool] | None = None
    if query.pool_aliases is not None:
        found = {a: svc.catalog.find_pool(tenant, query.protocol, a) for a in query.pool_aliases}
        pools = {p.pool_id: p for p in found.values() if p is not None}
    if query.code_ids is not None:
        codes = svc.codes.get_many_by_uuid(tenant, list(query.code_ids)).values()
        entries = sorted(
            (
                ((svc.codes.position(code), tenant), code)
                for code in codes
                if pools is None or code.pool_id in pools
            ),
            key=lambda entry: entry[0],
        )
        yield from reversed(entries)
        return
    if pools is None:  # every pool the protocol can name
        reachable = svc.catalog.list_pools(tenant)
        pools = {p.pool_id: p for p in reachable if query.protocol in dict(pool_aliases(p))}
    pool_ids = list(pools)
    before = cursor[0] if cursor is not None else None
    for position, code in svc.codes.list(tenant, pool_ids, before, inclusive=True):
        yield (position, tenant), code
