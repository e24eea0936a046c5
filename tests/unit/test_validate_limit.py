"""Validate's limit on failed answers per caller and window (promo/domain/attempts.py and
services.validation.validate_code), on a moto table built from template.yaml. Times are explicit, so
windows are exact: the limit here is 3 misses per 600 s."""

from datetime import UTC, datetime, timedelta

import pytest

from promo.domain.attempts import BlockedCallers, MissLimit, MissWindow
from promo.domain.errors import StoreUnavailable, TooManyAttempts
from promo.services import Services, validation
from promo.store import keys
from promo.store.attempts import AttemptStore
from tests.support.builders import ACTOR, new_codes, pool, tenant
from tests.support.tables import Stores

LIMIT, WINDOW = 3, 600
# 100 s into a window [T0 - 100, T0 + 500).
T0 = datetime(2026, 11, 28, 12, 1, 40, tzinfo=UTC)
DEVICE = "synctv-device:urn:synctv:devices:web:11223344"
OTHER_DEVICE = "synctv-device:urn:synctv:devices:web:55667788"
VALID = "CODE00000"


@pytest.fixture
def stores(moto_stores: Stores) -> Stores:
    limited = Stores(
        moto_stores.client,
        moto_stores.table_name,
        BULK_WRITE_CONCURRENCY=1,
        VALIDATE_MISS_LIMIT=LIMIT,
        VALIDATE_MISS_WINDOW_SECONDS=WINDOW,
    )
    for tenant_id in ("acme", "globex"):
        limited.catalog.put_tenant(tenant(tenant_id))
        the_pool = pool(tenant_id)
        limited.catalog.put_pool(the_pool)
        limited.codes.add(tenant_id, {"spring": the_pool}, new_codes("spring", 1), ACTOR)
    return limited


@pytest.fixture
def svc(stores: Stores) -> Services:
    return stores.services()


def validate(
    svc: Services,
    value: str,
    at: datetime = T0,
    caller: str = DEVICE,
    tenant_id: str = "acme",
) -> bool:
    return validation.validate_code(svc, tenant_id, value, at, caller)


def miss_until_refused(svc: Services, at: datetime = T0, caller: str = DEVICE) -> None:
    for attempt in range(LIMIT):
        assert validate(svc, f"GUESS-{attempt}", at, caller) is False
    with pytest.raises(TooManyAttempts):
        validate(svc, "GUESS-OVER", at, caller)


# ---------------------------------------------------------------- the limit


def test_under_the_limit_misses_answer_false_and_valid_codes_true(svc: Services) -> None:
    answers = [validate(svc, f"GUESS-{attempt}") for attempt in range(LIMIT)]

    assert answers == [False] * LIMIT
    assert validate(svc, VALID) is True


def test_valid_answers_are_never_counted(svc: Services) -> None:
    for _ in range(LIMIT * 5):
        assert validate(svc, VALID) is True

    assert [validate(svc, f"GUESS-{attempt}") for attempt in range(LIMIT)] == [False] * LIMIT


def test_the_miss_past_the_limit_is_refused_until_the_window_ends(svc: Services) -> None:
    for attempt in range(LIMIT):
        validate(svc, f"GUESS-{attempt}")

    with pytest.raises(TooManyAttempts) as refused:
        validate(svc, "GUESS-OVER")

    assert refused.value.retry_after == 500  # T0 is 100 s into a 600 s window


def test_over_the_limit_even_a_valid_code_is_refused(svc: Services) -> None:
    miss_until_refused(svc)

    with pytest.raises(TooManyAttempts) as refused:
        validate(svc, VALID, T0 + timedelta(seconds=60))

    assert refused.value.retry_after == 440


def test_the_refusal_is_the_same_whatever_the_code(svc: Services) -> None:
    miss_until_refused(svc)
    refusals = []
    for value in (VALID, "NO-SUCH-CODE"):
        with pytest.raises(TooManyAttempts) as refused:
            validate(svc, value)
        refusals.append((refused.value.message, refused.value.retry_after))

    assert len(set(refusals)) == 1


def test_a_blocked_caller_is_refused_without_touching_dynamodb(
    stores: Stores, svc: Services
) -> None:
    miss_until_refused(svc)
    calls: list[str] = []
    stores.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )

    for value in (VALID, "GUESS-AGAIN"):
        with pytest.raises(TooManyAttempts):
            validate(svc, value)

    assert calls == []


def test_the_next_window_starts_afresh(svc: Services) -> None:
    miss_until_refused(svc)
    next_window = T0 + timedelta(seconds=500)

    assert validate(svc, VALID, next_window) is True
    assert [validate(svc, f"NEXT-{i}", next_window) for i in range(LIMIT)] == [False] * LIMIT
    with pytest.raises(TooManyAttempts):
        validate(svc, "NEXT-OVER", next_window)


def test_another_caller_of_the_same_tenant_is_unaffected(svc: Services) -> None:
    miss_until_refused(svc)

    assert validate(svc, VALID, caller=OTHER_DEVICE) is True
    assert validate(svc, "GUESS-0", caller=OTHER_DEVICE) is False
    assert validate(svc, VALID, caller="synctv:viewer@demo.example") is True


def test_the_same_caller_name_in_another_tenant_is_counted_apart(svc: Services) -> None:
    miss_until_refused(svc)

    assert validate(svc, VALID, tenant_id="globex") is True
    assert [validate(svc, f"G-{i}", tenant_id="globex") for i in range(LIMIT)] == [False] * LIMIT


def test_another_instance_learns_the_block_at_the_callers_next_miss(
    stores: Stores, svc: Services
) -> None:
    miss_until_refused(svc)
    other_instance = stores.services()  # same table, its own memory

    assert validate(other_instance, VALID) is True  # it has not seen a miss of the caller yet
    with pytest.raises(TooManyAttempts):
        validate(other_instance, "GUESS-THERE")
    with pytest.raises(TooManyAttempts):
        validate(other_instance, VALID)


def test_a_limit_of_zero_counts_nothing(stores: Stores) -> None:
    unlimited = Stores(stores.client, stores.table_name, VALIDATE_MISS_LIMIT=0).services()

    assert [validate(unlimited, f"GUESS-{i}") for i in range(LIMIT * 3)] == [False] * LIMIT * 3
    assert misses_items(stores) == []


def test_a_miss_whose_count_fails_is_still_answered_as_a_miss(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object) -> int:
        raise StoreUnavailable("throttled")

    monkeypatch.setattr(AttemptStore, "count_miss", unavailable)

    assert [validate(svc, f"GUESS-{i}") for i in range(LIMIT + 2)] == [False] * (LIMIT + 2)
    assert validate(svc, VALID) is True


# ---------------------------------------------------------------- the counter item


def misses_items(stores: Stores) -> list[dict[str, dict[str, str]]]:
    items = stores.table.paginate(stores.table.scan, ConsistentRead=True)
    return [item for item in items if item["pk"]["S"].startswith(keys.MISSES_PREFIX)]


def test_the_counter_is_one_item_per_tenant_caller_and_window_expiring_with_it(
    stores: Stores, svc: Services
) -> None:
    validate(svc, "GUESS-0")
    validate(svc, "GUESS-1")
    validate(svc, "GUESS-0", tenant_id="globex")

    window_start = int(T0.timestamp()) - 100
    found = {
        item["pk"]["S"]: (item["misses"]["N"], item["expires_at"]["N"])
        for item in misses_items(stores)
    }
    assert found == {
        f"MISSES#acme#{window_start}#{DEVICE}": ("2", str(window_start + WINDOW)),
        f"MISSES#globex#{window_start}#{DEVICE}": ("1", str(window_start + WINDOW)),
    }


def test_only_counter_keys_start_with_the_counters_prefix() -> None:
    # The validate function's IAM grant (template.yaml) relies on it.
    others = [
        keys.code_key("acme", "MISSES#x"),
        keys.number_key("acme", 1),
        keys.counter_key("acme"),
        keys.tenant_key("acme"),
        keys.pool_key("acme", "p"),
        keys.alias_key("acme", "synctv", "2"),
        keys.receipt_key("acme", "s", "k"),
        keys.batch_key("acme", "b"),
    ]

    assert keys.misses_key("acme", 0, "x")["pk"]["S"].startswith(keys.MISSES_PREFIX)
    assert not [key for key in others if key["pk"]["S"].startswith(keys.MISSES_PREFIX)]


# ---------------------------------------------------------------- the policy in memory


def test_windows_are_fixed_and_aligned_to_the_epoch() -> None:
    policy = MissLimit(LIMIT, WINDOW)
    start = int(T0.timestamp()) - 100

    assert policy.window(T0) == MissWindow(start, start + WINDOW)
    assert policy.window(T0 + timedelta(seconds=499)) == policy.window(T0)
    assert policy.window(T0 + timedelta(seconds=500)).start == start + WINDOW


def test_the_limit_is_exceeded_only_past_it() -> None:
    assert not MissLimit(3, 600).exceeded(3)
    assert MissLimit(3, 600).exceeded(4)
    assert not MissLimit(0, 600).exceeded(10**6)


def test_blocked_callers_stay_bounded_keeping_the_newest() -> None:
    blocked = BlockedCallers(max_entries=3)
    window = MissLimit(LIMIT, WINDOW).window(T0)

    for index in range(5):
        blocked.block(("acme", f"device-{index}"), window, T0)

    assert len(blocked) == 3
    blocked.check(("acme", "device-0"), T0)  # forgotten: relearned at its next miss
    with pytest.raises(TooManyAttempts):
        blocked.check(("acme", "device-4"), T0)


def test_blocked_callers_forget_a_block_once_its_window_ended() -> None:
    blocked = BlockedCallers()
    window = MissLimit(LIMIT, WINDOW).window(T0)
    blocked.block(("acme", DEVICE), window, T0)

    blocked.check(("acme", DEVICE), datetime.fromtimestamp(window.end, UTC))

    assert len(blocked) == 0
