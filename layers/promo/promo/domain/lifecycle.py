"""Every lifecycle transition, defined once.

``AVAILABLE -> ISSUED -> USED``, plus ``BLOCKED``; soft deletion is the separate activity state.
The store turns each rule into the condition of a single conditional write (the condition is the
state the code leaves; a claim, which knows its candidate's fixed validity window from the index,
tests the window itself), and the domain uses the same rules to explain a refusal.
"""

from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from promo.domain.models import ActivityState, Code, CodeState, Recipient


class Transition(StrEnum):
    ISSUE = "ISSUE"
    REDEEM = "REDEEM"
    BLOCK = "BLOCK"


class Rule(NamedTuple):
    """The states a transition may leave and the one it reaches."""

    sources: frozenset[CodeState]
    target: CodeState
    # Whether the code's validity window must contain the request's effective time.
    needs_validity: bool
    # Whether a used code with redemptions left (a multi-use code) may leave USED too.
    from_partly_used: bool = False
    # Whether the transition takes one of the code's uses, so one must be free (not held).
    takes_use: bool = False


RULES: dict[Transition, Rule] = {
    Transition.ISSUE: Rule(frozenset({CodeState.AVAILABLE}), CodeState.ISSUED, True),
    # A code may be redeemed without having been issued first (SyncTV and POS flows do that).
    # A multi-use code is redeemed again while it has uses left; each redemption takes one.
    Transition.REDEEM: Rule(
        frozenset({CodeState.AVAILABLE, CodeState.ISSUED}), CodeState.USED, True, True, True
    ),
    Transition.BLOCK: Rule(
        frozenset({CodeState.AVAILABLE, CodeState.ISSUED}), CodeState.BLOCKED, False, True
    ),
}


def allows(
    transition: Transition, code: Code, at: datetime, holder: Recipient | None = None
) -> bool:
    """Whether ``transition`` may leave ``code``'s current state at effective time ``at``
    (for ``holder``, who may take a use held for them)."""
    rule = RULES[transition]
    if code.activity is not ActivityState.ACTIVE:
        return False
    # Uses left, or (for a transition taking one) held uses that may have expired.
    uses = code.uses_left or (rule.takes_use and code.holds)
    partly_used = code.state is CodeState.USED and bool(uses)
    if code.state not in rule.sources and not (rule.from_partly_used and partly_used):
        return False
    if rule.takes_use and code.free_uses(at, holder) == 0:
        return False
    return not rule.needs_validity or code.validity.contains(at)


def is_redeemable(code: Code, at: datetime) -> bool:
    """What SyncTV's validate answers: active, not spent or blocked, a use free (not held
    for someone), inside its validity window."""
    return allows(Transition.REDEEM, code, at)
