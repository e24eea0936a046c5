"""Codes newest first, across tenants and pools, resumable after any code of a page."""

import heapq
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from promo.domain.errors import (
    InvalidRequest,
)
from promo.domain.models import (
    Code,
    Pool,
)
from promo.services import Services
from promo.services.pools import find_pool
from promo.store.catalog import pool_aliases
from promo.store.codes.visibility import Snapshot


class CodeQuery(NamedTuple):
    """Which codes a listing returns, and from where it resumes."""

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


class CodePage(NamedTuple):
    """Codes, newest first, with the pool of each (by tenant and pool id) for the answer."""

    codes: list[Code]
    # The page is full, so more codes may follow it.
    more: bool
    pools: Mapping[tuple[str, str], Pool]


def page_of(svc: Services, codes: list[Code], more: bool = False) -> CodePage:
    """``codes`` with their pools (cached reads of the catalog, usually none)."""
    pools: dict[tuple[str, str], Pool] = {}
    for key in {(code.tenant_id, code.pool_id) for code in codes}:
        pool = svc.catalog.get_pool(*key)
        if pool is not None:
            pools[key] = pool
    return CodePage(codes, more, pools)


def pool_codes(
    svc: Services,
    tenant_id: str,
    protocol: str,
    alias: str,
    consumed: bool | None,
    offset: int,
    limit: int,
    include_deleted: bool = True,
) -> CodePage:
    """The codes of the pool a protocol names ``alias``, newest first, optionally only
    (un)consumed ones and without deleted ones, skipping ``offset``."""
    pool = find_pool(svc, tenant_id, protocol, alias)
    page: list[Code] = []
    matched = 0
    for _, code in svc.codes.list(pool.tenant_id, [pool.pool_id]):
        if consumed is not None and code.is_spent != consumed:
            continue
        if code.is_deleted and not include_deleted:
            continue
        matched += 1
        if matched <= offset:
            continue
        page.append(code)
        if len(page) == limit:
            return CodePage(page, True, {(tenant_id, pool.pool_id): pool})
    return CodePage(page, False, {(tenant_id, pool.pool_id): pool})


def list_codes(svc: Services, query: CodeQuery) -> CodePage:
    """Codes newest first across tenants and pools, resumable after any code of a page.

    The order is (creation position, tenant), both fixed at creation, so following pages
    returns every matching code exactly once while others are added, updated or deleted.
    """
    cursor = _cursor(svc, query)
    snapshot = svc.codes.snapshot()  # a bulk add is in the whole answer or not in it
    streams = [_tenant_stream(svc, query, tenant, cursor, snapshot) for tenant in query.tenant_ids]
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
            return page_of(svc, page, more=True)
    return page_of(svc, page)


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
    svc: Services, query: CodeQuery, tenant: str, cursor: Position | None, snapshot: Snapshot
) -> Iterator[tuple[Position, Code]]:
    pools: Mapping[str, Pool] | None = None
    if query.pool_aliases is not None:
        found = {a: svc.catalog.find_pool(tenant, query.protocol, a) for a in query.pool_aliases}
        pools = {p.pool_id: p for p in found.values() if p is not None}
    if query.code_ids is not None:
        codes = svc.codes.get_many_by_uuid(tenant, list(query.code_ids), snapshot).values()
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
    for position, code in svc.codes.list(
        tenant, pool_ids, before, inclusive=True, snapshot=snapshot
    ):
        yield (position, tenant), code
