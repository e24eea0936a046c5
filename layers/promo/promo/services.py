"""Operations shared by the protocols. A handler parses and validates its vendor's request, makes
exactly one call here, and renders the result in its vendor's format."""

import heapq
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from promo.domain.attempts import BlockedCallers, MissLimit
from promo.domain.codegen import CodeGenerator
from promo.domain.errors import (
    AlreadyDone,
    CodeNotFound,
    DuplicateValues,
    IdempotencyConflict,
    InvalidRequest,
    NoCodeAvailable,
    NotAvailableForIssue,
    OutsideIssueWindow,
    PoolClosed,
    PoolNotFound,
    PromoError,
    StoreUnavailable,
    TransitionRefused,
)
from promo.domain.lifecycle import is_redeemable
from promo.domain.models import (
    Code,
    Issuance,
    NewCode,
    PointOfContact,
    Pool,
    Receipt,
    Recipient,
    StepKind,
    Window,
)
from promo.observability import count, logger
from promo.queue import Sender
from promo.settings import Settings
from promo.store.attempts import AttemptStore
from promo.store.catalog import CatalogStore, pool_aliases
from promo.store.codes import CodeStore
from promo.store.credentials import CredentialStore


class ValidateLimit(NamedTuple):
    """Validate's failed-answer limit: the policy, the shared counters, and the callers this
    function instance already knows to be over the limit."""

    limit: MissLimit
    counters: AttemptStore
    blocked: BlockedCallers

    @classmethod
    def configured(cls, settings: Settings, counters: AttemptStore) -> "ValidateLimit":
        policy = MissLimit(settings.validate_miss_limit, settings.validate_miss_window_seconds)
        return cls(policy, counters, BlockedCallers())


class Services(NamedTuple):
    """What one operation works with, built once per process by ``promo.bootstrap``."""

    settings: Settings
    codes: CodeStore
    catalog: CatalogStore
    credentials: CredentialStore
    validate_limit: ValidateLimit
    # Puts an asynchronous operation on the worker's queue.
    send: Sender


class CodeToAdd(NamedTuple):
    """A code to add to the pool a protocol names ``pool_alias``."""

    pool_alias: str
    value: str
    validity: Window


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
    """One page of a listing, newest first."""

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


def find_pool(svc: Services, tenant_id: str, protocol: str, alias: str) -> Pool:
    pool = svc.catalog.find_pool(tenant_id, protocol, alias)
    if pool is None:
        raise PoolNotFound
    return pool


def validate_code(svc: Services, tenant_id: str, value: str, at: datetime, caller: str) -> bool:
    """Whether the code can be redeemed now: one strongly consistent read. Another tenant's
    code, an unknown one and an unusable one all answer False alike.

    ``caller`` (who asks, e.g. a device) may get only so many False answers per window
    (promo/domain/attempts.py): each one costs one counter write, and past the limit every
    request of the caller, whatever its code, is refused with TooManyAttempts, without a read.
    """
    limit = svc.validate_limit
    key = (tenant_id, caller)
    limit.blocked.check(key, at)
    code = svc.codes.get(tenant_id, value)
    if code is not None and is_redeemable(code, at):
        return True
    if not limit.limit.enabled:
        return False
    window = limit.limit.window(at)
    try:
        misses = limit.counters.count_miss(tenant_id, caller, window)
    except StoreUnavailable as failed:
        # Answer the miss anyway: refusing would not hide it (a hit never writes, so any
        # refusal here would itself say "miss"), and it would fail an honest client.
        logger.warning("Validate miss not counted", extra={"reason": failed.message})
        count("UncountedValidateMisses")
        return False
    if limit.limit.exceeded(misses):
        if misses == limit.limit.limit + 1:  # once per window, by whichever instance crosses
            logger.warning(
                "Validate caller over the miss limit", extra={"tenant": tenant_id, "caller": caller}
            )
            count("ValidateCallersBlocked")
        raise limit.blocked.block(key, window, at)
    return False


def generate_codes(svc: Services, pool: Pool, count: int, length: int, actor: str) -> list[Code]:
    """``count`` new random codes in ``pool``, none colliding with any value of the tenant."""
    generator = CodeGenerator(length)
    tenant = pool.tenant_id
    for _ in range(3):
        values = generator.generate(
            count,
            existing_count=svc.codes.created_count(tenant),
            taken=lambda batch: svc.codes.existing_values(tenant, list(batch)),
        )
        try:
            new = [NewCode(pool.pool_id, value) for value in values]
            return svc.codes.add(tenant, {pool.pool_id: pool}, new, actor)
        except DuplicateValues:
            continue  # another writer took one of them between the check and the write
    raise DuplicateValues([])


def claim_code(svc: Services, pool: Pool, issuance: Issuance) -> Code:
    """Issue any available code of the pool at the issuance's effective time."""
    if not pool.issue_window.contains(issuance.at):
        raise OutsideIssueWindow
    return svc.codes.claim(pool, issuance)


def pool_code(svc: Services, tenant_id: str, protocol: str, alias: str, number: int) -> Code:
    """The code with this integer id in the pool a protocol names; another pool's code is
    not found, as an unknown one."""
    pool = find_pool(svc, tenant_id, protocol, alias)
    code = svc.codes.get_by_number(tenant_id, number)
    if code is None or code.pool_id != pool.pool_id:
        raise CodeNotFound
    return code


def request_campaign_code(
    svc: Services,
    tenant_id: str,
    protocol: str,
    alias: str,
    at: datetime,
    actor: str,
    recipient: Recipient | None = None,
    point_of_contact: PointOfContact | None = None,
) -> tuple[Pool, Code]:
    """Issue a code of the campaign a CRM.COM alias names, if it gives codes on request."""
    pool = find_pool(svc, tenant_id, protocol, alias)
    campaign = pool.aliases.crm_campaign
    if campaign is None or not campaign.gives_codes_on_request:
        raise PoolClosed(
            f"Promotion campaign {alias!r} is "
            + (
                f"{campaign.state}, of type {campaign.type}, distributed "
                f"{campaign.distribution_method}"
                if campaign
                else "not a promotion campaign"
            )
            + ": only POSTED promotion campaigns of type DISCOUNT_PROMOTION with distribution "
            "method UPON_REQUEST provide promo codes."
        )
    return pool, claim_code(svc, pool, Issuance(at, actor, recipient, point_of_contact))


def pool_codes(
    svc: Services, pool: Pool, consumed: bool | None, offset: int, limit: int
) -> CodePage:
    """A pool's codes newest first, optionally only (un)consumed ones, skipping ``offset``."""
    page: list[Code] = []
    matched = 0
    for _, code in svc.codes.list(pool.tenant_id, [pool.pool_id]):
        if consumed is not None and (code.used_at is not None) != consumed:
            continue
        matched += 1
        if matched <= offset:
            continue
        page.append(code)
        if len(page) == limit:
            return CodePage(page, more=True)
    return CodePage(page, more=False)


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


# ---------------------------------------------------------------------- operation steps


class Step(NamedTuple):
    """One configured way of getting a code (a Maestra operation step), with its request."""

    kind: StepKind
    tenant_id: str
    protocol: str
    value: str | None
    pool_alias: str | None
    validity: Window
    issuance: Issuance


class StepOutcome(NamedTuple):
    """What a step did: ``refusal`` is None when it changed the code; otherwise it says why
    not, and ``code`` / ``pool`` carry whatever is known for the answer."""

    code: Code | None
    pool: Pool | None
    refusal: PromoError | None = None
    replayed: bool = False


_BUSINESS_REFUSALS = (
    CodeNotFound,
    PoolNotFound,
    NoCodeAvailable,
    NotAvailableForIssue,
    OutsideIssueWindow,
    TransitionRefused,
)


def perform_step(svc: Services, step: Step) -> StepOutcome:
    """Run a step once. With a receipt, a repeated request replays the first outcome and a
    different request under the same key is refused (IdempotencyConflict)."""
    pool: Pool | None = None
    try:
        if step.pool_alias is not None:
            pool = find_pool(svc, step.tenant_id, step.protocol, step.pool_alias)
        code = _run(svc, step, pool)
    except AlreadyDone as done:
        receipt: Receipt = done.receipt  # type: ignore[assignment]
        asked = step.issuance.receipt
        if asked is None or receipt.fingerprint != asked.fingerprint:
            raise IdempotencyConflict(
                "This transactionId was already used with a different request."
            ) from None
        replayed = svc.codes.get(step.tenant_id, receipt.value or "")
        return StepOutcome(replayed, pool, replayed=True)
    except _BUSINESS_REFUSALS as refusal:
        known = getattr(refusal, "code", None)
        if known is None and step.value is not None:
            known = svc.codes.get(step.tenant_id, step.value)
        return StepOutcome(known, pool, refusal)
    return StepOutcome(code, pool)


def _run(svc: Services, step: Step, pool: Pool | None) -> Code:
    if step.kind is StepKind.FROM_POOL:
        assert pool is not None
        return claim_code(svc, pool, step.issuance)
    assert step.value is not None
    if step.kind is StepKind.REDEEM:
        return svc.codes.redeem(step.tenant_id, step.value, step.issuance)
    if step.kind is StepKind.BY_VALUE_CREATE:
        assert pool is not None
        existing = svc.codes.get(step.tenant_id, step.value)
        if existing is None:
            return _create_issued(svc, step, pool)
        if existing.pool_id != pool.pool_id:
            raise NotAvailableForIssue(code=existing)
        return _issue_existing(svc, step, existing)
    return _issue_existing(svc, step, svc.codes.get(step.tenant_id, step.value))


def _issue_existing(svc: Services, step: Step, code: Code | None) -> Code:
    """Issue ``code`` (as just read; None if it does not exist) by its value."""
    assert step.value is not None
    if code is None:
        raise CodeNotFound
    code_pool = svc.catalog.get_pool(step.tenant_id, code.pool_id)
    if code_pool is not None and not code_pool.issue_window.contains(step.issuance.at):
        raise OutsideIssueWindow(code=code)
    return svc.codes.issue(step.tenant_id, step.value, step.issuance)


def _create_issued(svc: Services, step: Step, pool: Pool) -> Code:
    assert step.value is not None
    at = step.issuance.at
    if not pool.issue_window.contains(at) or not step.validity.contains(at):
        raise OutsideIssueWindow
    try:
        new = NewCode(pool.pool_id, step.value, step.validity)
        return svc.codes.create_issued(pool, new, step.issuance)
    except DuplicateValues:  # created meanwhile by another request: issue that one
        return _issue_existing(svc, step, svc.codes.get(step.tenant_id, step.value))
