"""Issuing and using codes: a Maestra operation step (issue by value, create-and-issue, issue
from a pool, redeem) and a CRM.COM request for a campaign's code. With a receipt, a repeated
request replays its first outcome."""

from datetime import datetime, timedelta
from typing import NamedTuple

from promo.domain import clock, lifecycle
from promo.domain.credentials import DEFAULT_HOLD_MINUTES
from promo.domain.errors import (
    AlreadyDone,
    CodeExpired,
    CodeNotFound,
    CodeNotYetValid,
    DuplicateValues,
    IdempotencyConflict,
    InvalidRequest,
    NoCodeAvailable,
    NotAvailableForIssue,
    NothingHeld,
    NothingToRollBack,
    NoUseToHold,
    OutsideIssueWindow,
    PoolClosed,
    PoolNotFound,
    PromoError,
    TransitionRefused,
)
from promo.domain.lifecycle import Transition
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
from promo.services import Services
from promo.services.pools import find_pool
from promo.store.receipt_reads import stored_receipt


def claim_code(svc: Services, pool: Pool, issuance: Issuance) -> Code:
    """Issue any available code of the pool at the issuance's effective time."""
    if not pool.issue_window.contains(issuance.at):
        raise OutsideIssueWindow
    return svc.codes.claim(pool, issuance)


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
    # The request dated itself (Maestra's executionDateTimeUtc): its effective time must not
    # come before the creation of the code it names.
    backdated: bool = False
    # How long a reservation holds the use it takes, from the moment it is made.
    hold_for: timedelta = timedelta(minutes=DEFAULT_HOLD_MINUTES)


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
    NothingHeld,
    NothingToRollBack,
    NoUseToHold,
    OutsideIssueWindow,
    TransitionRefused,
)


def perform_step(svc: Services, step: Step) -> StepOutcome:
    """Run a step once. With a receipt, a repeated request replays the first outcome and a
    different request under the same key is refused (IdempotencyConflict). The outcome
    carries the pool of the code it names, whatever the step named."""
    outcome = _perform(svc, step)
    code = outcome.code
    if outcome.pool is None and code is not None:
        return outcome._replace(pool=svc.catalog.get_pool(code.tenant_id, code.pool_id))
    return outcome


def already_performed(svc: Services, step: Step) -> bool:
    """Whether the step's idempotency key was already used: True if by this very request
    (performing it again would replay it), IdempotencyConflict if by another one, as
    ``perform_step`` would answer. False without a key, or for a key not used yet. One read,
    no write: what ``/async`` checks before it queues a step."""
    asked = step.issuance.receipt
    if asked is None:
        return False
    stored = stored_receipt(svc.codes.table, step.tenant_id, asked.scope, asked.key)
    if stored is None:
        return False
    if stored.fingerprint != asked.fingerprint:
        raise IdempotencyConflict(_CONFLICT)
    return True


_CONFLICT = "This transactionId was already used with a different request."


def _perform(svc: Services, step: Step) -> StepOutcome:
    pool: Pool | None = None
    try:
        if step.pool_alias is not None:
            pool = find_pool(svc, step.tenant_id, step.protocol, step.pool_alias)
        code = _run(svc, step, pool)
    except AlreadyDone as done:
        receipt: Receipt = done.receipt  # type: ignore[assignment]
        asked = step.issuance.receipt
        if asked is None or receipt.fingerprint != asked.fingerprint:
            raise IdempotencyConflict(_CONFLICT) from None
        replayed = svc.codes.get(step.tenant_id, receipt.value or "")
        return StepOutcome(replayed, pool, replayed=True)
    except _BUSINESS_REFUSALS as refusal:
        known = getattr(refusal, "code", None)
        if known is None and step.value is not None:
            known = svc.codes.get(step.tenant_id, step.value)
        return StepOutcome(known, pool, _why_not(refusal, known, step))
    return StepOutcome(code, pool)


def _why_not(refusal: PromoError, code: Code | None, step: Step) -> PromoError:
    """The refusal to answer: a redeem the store refused, of a code whose state allowed it,
    failed on the code's validity window, and says so (expired, or not valid yet) rather than
    "used, blocked or deleted". Judged from the code as read after the refusal; if it changed
    in between, the store's own refusal stands."""
    if step.kind is not StepKind.REDEEM and step.kind is not StepKind.RESERVE:
        return refusal
    if not isinstance(refusal, TransitionRefused | NoUseToHold):
        return refusal
    at = step.issuance.at
    if code is None or not lifecycle.allows(
        Transition.REDEEM, code._replace(validity=Window()), at, step.issuance.recipient
    ):
        return refusal
    if code.validity.start is not None and at < code.validity.start:
        return CodeNotYetValid()
    if code.validity.end is not None and at > code.validity.end:
        return CodeExpired()
    return refusal


def _run(svc: Services, step: Step, pool: Pool | None) -> Code:
    if step.kind is StepKind.FROM_POOL:
        assert pool is not None
        return claim_code(svc, pool, step.issuance)
    assert step.value is not None
    if step.kind.uses:
        return _use(svc, step)
    if step.kind is StepKind.BY_VALUE_CREATE:
        assert pool is not None
        existing = svc.codes.get(step.tenant_id, step.value)
        if existing is None:
            return _create_issued(svc, step, pool)
        if existing.pool_id != pool.pool_id:
            raise NotAvailableForIssue(code=existing)
        return _issue_existing(svc, step, existing)
    return _issue_existing(svc, step, svc.codes.get(step.tenant_id, step.value))


def _use(svc: Services, step: Step) -> Code:
    """Redeem, hold, release or give back a use of the code the step names."""
    assert step.value is not None
    if step.backdated and step.kind in (StepKind.REDEEM, StepKind.RESERVE):
        _check_created_by(svc.codes.get(step.tenant_id, step.value), step)  # one read more
    if step.kind is StepKind.REDEEM:
        return svc.codes.redeem(step.tenant_id, step.value, step.issuance)
    if step.kind is StepKind.RESERVE:
        until = clock.now() + step.hold_for
        return svc.codes.reserve(step.tenant_id, step.value, step.issuance, until)
    if step.kind is StepKind.RELEASE:
        return svc.codes.release(step.tenant_id, step.value, step.issuance)
    reason = f"rollback-redemption by {step.issuance.actor}"
    return svc.codes.roll_back_redemption(step.tenant_id, step.value, step.issuance, reason)


def _issue_existing(svc: Services, step: Step, code: Code | None) -> Code:
    """Issue ``code`` (as just read; None if it does not exist) by its value."""
    assert step.value is not None
    if code is None:
        raise CodeNotFound
    _check_created_by(code, step)
    code_pool = svc.catalog.get_pool(step.tenant_id, code.pool_id)
    if code_pool is not None and not code_pool.issue_window.contains(step.issuance.at):
        raise OutsideIssueWindow(code=code)
    return svc.codes.issue(step.tenant_id, step.value, step.issuance, code_pool)


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


def _check_created_by(code: Code | None, step: Step) -> None:
    """A backdated step cannot happen to a code before the code existed."""
    if code is None:
        raise CodeNotFound
    if step.backdated and code.audit.created_at > step.issuance.at:
        raise InvalidRequest(
            "executionDateTimeUtc is before the promo code was created.", "executionDateTimeUtc"
        )
