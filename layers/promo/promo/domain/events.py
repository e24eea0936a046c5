"""Domain events: what happened to a code, told from the code as it was and as it is.

Every kind of code event is one entry of ``CODE_EVENTS``: when it happened (a test of the old
and new versions of the code), when and by whom, and what else it says. ``code_events`` runs
them all, so a new kind is one entry. Reservations (``CodeReserved`` / ``CodeReleased``) have no
entry yet: a code does not record a hold, so no version of it can show one being taken or
given back; they become two entries when it does.

An event names the tenant, the pool, the code (id, integer id, value), the actor (a
credential's name, never a secret) and the time, and nothing secret: no hash, digest or token
is ever copied from a code (the facts are chosen here one by one, never the whole item).
Schemas: docs/events.md.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from promo.domain import clock
from promo.domain.inventory import AlertLevel
from promo.domain.models import ActivityState, CodeState, Hold, Recipient

# The source every event is published under (the webhook's rule matches it).
SOURCE = "promo-codes"
# Who announces a pool's level: the inventory, not a person or credential.
INVENTORY_ACTOR = "promo-codes:inventory"
# Codes per CodesAdded event of a bulk add (an event stays far below EventBridge's 256 KB).
CODES_PER_EVENT = 100


class Use(NamedTuple):
    """One redemption, or one redemption given back, as the code records it."""

    at: datetime
    actor: str
    by: str | None = None
    point_of_contact: str | None = None
    reason: str | None = None


class CodeImage(NamedTuple):
    """One version of a code, as a change of the table shows it (no attribute of a secret)."""

    tenant_id: str
    pool_id: str
    value: str
    uuid: str
    number: int
    state: CodeState
    activity: ActivityState
    # Carries a bulk add's staging marker (before its first change).
    staged: bool
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    # The bulk add the code came with, if it came with one.
    batch: str | None = None
    issued_at: datetime | None = None
    recipient: Recipient | None = None
    issued_point_of_contact: str | None = None
    uses_left: int | None = None
    redemptions: tuple[Use, ...] = ()
    rollbacks: tuple[Use, ...] = ()
    blocked_at: datetime | None = None
    deleted_at: datetime | None = None
    # Uses held for holders (reservations), each until its deadline.
    holds: tuple[Hold, ...] = ()


class DomainEvent(NamedTuple):
    """An event before it is published: ``kind`` is its detail type, ``detail`` its body
    without the id (the publisher derives one that a retry repeats)."""

    kind: str
    tenant_id: str
    pool_id: str
    at: datetime
    detail: Mapping[str, Any]


def code_facts(code: CodeImage) -> dict[str, Any]:
    return {"id": code.uuid, "number": code.number, "value": code.value}


def _event(
    kind: str, tenant_id: str, pool_id: str, at: datetime, actor: str, **facts: Any
) -> DomainEvent:
    detail = {
        "kind": kind,
        "tenant": tenant_id,
        "pool": pool_id,
        "actor": actor,
        "at": clock.to_stored(at),
        **{name: value for name, value in facts.items() if value is not None},
    }
    return DomainEvent(kind, tenant_id, pool_id, at, detail)


class CodeEventKind(NamedTuple):
    name: str
    # Whether the change from ``old`` (None: the code is new) to ``new`` is one of these.
    happened: Callable[[CodeImage | None, CodeImage], bool]
    # When, by whom, and what else the event says, from the new version (and, for what went
    # away, the old one).
    moment: Callable[[CodeImage], datetime]
    actor: Callable[[CodeImage], str]
    facts: Callable[[CodeImage | None, CodeImage], dict[str, Any]]


def _added(old: CodeImage | None, new: CodeImage) -> bool:
    return old is None and not new.staged


def _issued(old: CodeImage | None, new: CodeImage) -> bool:
    # From available (a claim, an issue by value) or created issued; never a rollback's ISSUED.
    was_available = old is None or old.state is CodeState.AVAILABLE
    return new.state is CodeState.ISSUED and was_available and not new.staged


def _redeemed(old: CodeImage | None, new: CodeImage) -> bool:
    if old is None:
        return False
    if len(new.redemptions) > len(old.redemptions):
        return True
    # A code written before redemptions were listed: the state says it.
    return not new.redemptions and old.state is not CodeState.USED and new.state is CodeState.USED


def _rolled_back(old: CodeImage | None, new: CodeImage) -> bool:
    return old is not None and len(new.rollbacks) > len(old.rollbacks)


def _blocked(old: CodeImage | None, new: CodeImage) -> bool:
    return new.state is CodeState.BLOCKED and (old is None or old.state is not CodeState.BLOCKED)


def _deleted(old: CodeImage | None, new: CodeImage) -> bool:
    deleted = ActivityState.DELETED
    return new.activity is deleted and (old is None or old.activity is not deleted)


def _new_holds(old: CodeImage | None, new: CodeImage) -> list[Hold]:
    """Holds taken, or moved to a new deadline, by this change."""
    before = set() if old is None else set(old.holds)
    return [hold for hold in new.holds if hold not in before]


def _gone_holds(old: CodeImage | None, new: CodeImage) -> list[Hold]:
    """Holds given back by this change: released, or taken over after their deadline by a
    reservation (a redemption through a hold is announced as the redemption)."""
    holders = {hold.holder for hold in new.holds}
    return [] if old is None else [h for h in old.holds if h.holder not in holders]


def _reserved(old: CodeImage | None, new: CodeImage) -> bool:
    return bool(_new_holds(old, new))


def _released(old: CodeImage | None, new: CodeImage) -> bool:
    return bool(_gone_holds(old, new)) and not _redeemed(old, new)


def _hold_facts(hold: Hold, code: CodeImage) -> dict[str, Any]:
    return {
        "code": code_facts(code),
        "holder": {"kind": hold.holder.kind, "id": hold.holder.identifier},
        "uses_left": code.uses_left,
    }


def _reservation_facts(old: CodeImage | None, new: CodeImage) -> dict[str, Any]:
    hold = _new_holds(old, new)[0]
    return {**_hold_facts(hold, new), "until": clock.to_stored(hold.until)}


def _release_facts(old: CodeImage | None, new: CodeImage) -> dict[str, Any]:
    return _hold_facts(_gone_holds(old, new)[0], new)


def _last(uses: Sequence[Use], code: CodeImage) -> Use:
    return uses[-1] if uses else Use(code.updated_at, code.updated_by)


def _issue_facts(old: CodeImage | None, code: CodeImage) -> dict[str, Any]:
    recipient = code.recipient
    return {
        "code": code_facts(code),
        "recipient": {"kind": recipient.kind, "id": recipient.identifier} if recipient else None,
        "point_of_contact": code.issued_point_of_contact,
    }


def _redemption_facts(old: CodeImage | None, code: CodeImage) -> dict[str, Any]:
    use = _last(code.redemptions, code)
    return {
        "code": code_facts(code),
        "uses_left": code.uses_left,
        "redeemed_by": use.by,
        "point_of_contact": use.point_of_contact,
    }


def _rollback_facts(old: CodeImage | None, code: CodeImage) -> dict[str, Any]:
    return {
        "code": code_facts(code),
        "state": code.state.value,
        "uses_left": code.uses_left,
        "reason": _last(code.rollbacks, code).reason,
    }


def _code_only(old: CodeImage | None, code: CodeImage) -> dict[str, Any]:
    return {"code": code_facts(code)}


CODE_EVENTS: tuple[CodeEventKind, ...] = (
    CodeEventKind(
        "CodesAdded",
        _added,
        lambda code: code.created_at,
        lambda code: code.created_by,
        lambda old, code: {"codes": [code_facts(code)], "count": 1, "batch": code.batch},
    ),
    CodeEventKind(
        "CodeIssued",
        _issued,
        lambda code: code.issued_at or code.updated_at,
        lambda code: code.updated_by,
        _issue_facts,
    ),
    CodeEventKind(
        "CodeRedeemed",
        _redeemed,
        lambda code: _last(code.redemptions, code).at,
        lambda code: _last(code.redemptions, code).actor,
        _redemption_facts,
    ),
    CodeEventKind(
        "RedemptionRolledBack",
        _rolled_back,
        lambda code: _last(code.rollbacks, code).at,
        lambda code: _last(code.rollbacks, code).actor,
        _rollback_facts,
    ),
    CodeEventKind(
        "CodeReserved",
        _reserved,
        lambda code: code.updated_at,
        lambda code: code.updated_by,
        _reservation_facts,
    ),
    CodeEventKind(
        "CodeReleased",
        _released,
        lambda code: code.updated_at,
        lambda code: code.updated_by,
        _release_facts,
    ),
    CodeEventKind(
        "CodeBlocked",
        _blocked,
        lambda code: code.blocked_at or code.updated_at,
        lambda code: code.updated_by,
        _code_only,
    ),
    CodeEventKind(
        "CodeDeleted",
        _deleted,
        lambda code: code.deleted_at or code.updated_at,
        lambda code: code.updated_by,
        _code_only,
    ),
)


def code_events(old: CodeImage | None, new: CodeImage | None) -> list[DomainEvent]:
    """The events of one change of a code, in ``CODE_EVENTS`` order. A code that goes away (a
    bulk add's stage rolled back) was never a code, so its removal tells nothing."""
    if new is None:
        return []
    return [
        _event(
            kind.name,
            new.tenant_id,
            new.pool_id,
            kind.moment(new),
            kind.actor(new),
            **kind.facts(old, new),
        )
        for kind in CODE_EVENTS
        if kind.happened(old, new)
    ]


def codes_added(
    tenant_id: str,
    pool_id: str,
    codes: Sequence[CodeImage],
    actor: str,
    at: datetime,
    batch: str,
) -> list[DomainEvent]:
    """A bulk add's codes of one pool, announced when its batch commits, ``CODES_PER_EVENT``
    to an event."""
    return [
        _event(
            "CodesAdded",
            tenant_id,
            pool_id,
            at,
            actor,
            codes=[code_facts(code) for code in codes[start : start + CODES_PER_EVENT]],
            count=len(codes[start : start + CODES_PER_EVENT]),
            batch=batch,
        )
        for start in range(0, len(codes), CODES_PER_EVENT)
    ]


_POOL_EVENT = {AlertLevel.LOW: "PoolLow", AlertLevel.EMPTY: "PoolEmpty"}


def pool_event(
    level: AlertLevel,
    tenant_id: str,
    pool_id: str,
    available: int,
    low_watermark: int | None,
    at: datetime,
) -> DomainEvent:
    """The pool's available count fell to its low watermark (PoolLow) or to none (PoolEmpty)."""
    return _event(
        _POOL_EVENT[level],
        tenant_id,
        pool_id,
        at,
        INVENTORY_ACTOR,
        available=max(available, 0),
        low_watermark=low_watermark,
    )
