from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from promo.domain.lifecycle import RULES, Transition, allows, is_redeemable
from promo.domain.models import ActivityState, Audit, Code, CodeState, Window

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def code(
    state: CodeState = CodeState.AVAILABLE,
    activity: ActivityState = ActivityState.ACTIVE,
    validity: Window | None = None,
) -> Code:
    audit = Audit(NOW, "t", NOW, "t")
    return Code("acme", "p", "V", uuid4(), 1, state, activity, validity or Window(), audit)


@pytest.mark.parametrize(
    ("transition", "state", "allowed"),
    [
        (Transition.ISSUE, CodeState.AVAILABLE, True),
        (Transition.ISSUE, CodeState.ISSUED, False),
        (Transition.ISSUE, CodeState.USED, False),
        (Transition.ISSUE, CodeState.BLOCKED, False),
        (Transition.REDEEM, CodeState.AVAILABLE, True),
        (Transition.REDEEM, CodeState.ISSUED, True),
        (Transition.REDEEM, CodeState.USED, False),
        (Transition.REDEEM, CodeState.BLOCKED, False),
        (Transition.BLOCK, CodeState.AVAILABLE, True),
        (Transition.BLOCK, CodeState.ISSUED, True),
        (Transition.BLOCK, CodeState.USED, False),
        (Transition.BLOCK, CodeState.BLOCKED, False),
    ],
)
def test_each_transition_leaves_only_its_source_states(
    transition: Transition, state: CodeState, allowed: bool
) -> None:
    assert allows(transition, code(state), NOW) is allowed
    assert (state in RULES[transition].sources) is allowed


@pytest.mark.parametrize("transition", list(Transition))
def test_a_deleted_code_allows_no_transition(transition: Transition) -> None:
    assert not allows(transition, code(activity=ActivityState.DELETED), NOW)


def test_issue_and_redeem_need_the_effective_time_inside_the_validity_window() -> None:
    window = Window(NOW - timedelta(days=1), NOW + timedelta(days=1))
    valid = code(validity=window)

    assert allows(Transition.ISSUE, valid, NOW)
    assert not allows(Transition.ISSUE, valid, NOW + timedelta(days=2))
    assert not allows(Transition.REDEEM, valid, NOW - timedelta(days=2))
    assert allows(Transition.BLOCK, valid, NOW + timedelta(days=2))


def test_validity_window_includes_both_ends() -> None:
    window = Window(NOW, NOW + timedelta(hours=1))

    assert window.contains(NOW)
    assert window.contains(NOW + timedelta(hours=1))
    assert not window.contains(NOW + timedelta(hours=1, microseconds=1))
    assert not window.contains(NOW - timedelta(microseconds=1))
    assert Window(NOW, NOW).contains(NOW)
    assert Window().contains(NOW)


def test_redeemable_means_active_unused_unblocked_and_valid() -> None:
    assert is_redeemable(code(), NOW)
    assert is_redeemable(code(CodeState.ISSUED), NOW)
    assert not is_redeemable(code(CodeState.USED), NOW)
    assert not is_redeemable(code(CodeState.BLOCKED), NOW)
    assert not is_redeemable(code()._replace(activity=ActivityState.DELETED), NOW)
    assert not is_redeemable(code(validity=Window(end=NOW - timedelta(seconds=1))), NOW)
