"""Reservations (issue 16, item 3) against DynamoDB Local: a use held for a holder until a
deadline. While it is held nobody else can take it; the holder's redemption takes it; a release
or the deadline gives it back, with no job sweeping anything. Concurrency runs in separate
processes, as Lambda instances do.
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from promo.domain import clock
from promo.domain.errors import (
    CodeExpired,
    NoCodeAvailable,
    NothingHeld,
    NoUseToHold,
    StoreUnavailable,
    TransitionRefused,
    UsesHeld,
)
from promo.domain.lifecycle import is_redeemable
from promo.domain.models import (
    CodeState,
    Issuance,
    NewCode,
    Receipt,
    Recipient,
    StepKind,
    Window,
)
from promo.services.issuing import Step, perform_step
from tests.integration.test_faults import DROPPED, SEED, FaultInjector, FaultyStores, faulty
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.processes import in_processes, process_client, thread_stores
from tests.support.tables import Stores
from tools.dynamodb_local import DynamoDBLocal

__all__ = ["faulty"]  # the fixture, shared with test_faults

HOLD = timedelta(minutes=15)


def _customer(name: str) -> Issuance:
    return Issuance(moment(), ACTOR, Recipient("maestra.webSiteUserId", name))


@pytest.fixture
def stores(local_stores: Stores) -> Stores:
    local_stores.catalog.put_tenant(tenant("acme"))
    return local_stores


def _add(stores: Stores, value: str, uses: int = 1) -> None:
    """A code of a pool whose codes have ``uses`` redemptions each."""
    spring = pool(redemptions_per_code=uses)
    stores.catalog.put_pool(spring)
    stores.codes.add("acme", {"spring": spring}, [NewCode("spring", value)], ACTOR)


def _later(monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    """Move the service's clock forward, as the hold's deadline passes."""
    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start + by)


def test_a_held_use_of_a_single_use_code_cannot_be_redeemed_by_anyone_else(
    stores: Stores,
) -> None:
    _add(stores, "HOLD-ONE")
    held = stores.codes.reserve("acme", "HOLD-ONE", _customer("ann"), clock.now() + HOLD)

    with pytest.raises(TransitionRefused):
        stores.codes.redeem("acme", "HOLD-ONE", _customer("bob"))
    with pytest.raises(TransitionRefused):
        stores.codes.redeem("acme", "HOLD-ONE", Issuance(moment(), ACTOR))  # no customer
    with pytest.raises(NoUseToHold):
        stores.codes.reserve("acme", "HOLD-ONE", _customer("bob"), clock.now() + HOLD)
    shown = stores.codes.get("acme", "HOLD-ONE")

    assert held.uses_left == 0
    assert not held.is_spent
    assert [hold.holder.identifier for hold in held.holds] == ["ann"]
    assert shown is not None
    assert not is_redeemable(shown, moment())


def test_the_holders_redemption_takes_the_held_use(stores: Stores) -> None:
    _add(stores, "HOLD-TWO")
    stores.codes.reserve("acme", "HOLD-TWO", _customer("ann"), clock.now() + HOLD)

    redeemed = stores.codes.redeem("acme", "HOLD-TWO", _customer("ann"))

    assert redeemed.state is CodeState.USED
    assert redeemed.is_spent
    assert redeemed.holds == ()
    assert redeemed.used_by == "ann"
    with pytest.raises(TransitionRefused):
        stores.codes.redeem("acme", "HOLD-TWO", _customer("ann"))


def test_a_held_use_comes_back_after_its_deadline_without_any_job(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(stores, "HOLD-THREE")
    stores.codes.reserve("acme", "HOLD-THREE", _customer("ann"), clock.now() + HOLD)
    _later(monkeypatch, HOLD + timedelta(seconds=1))

    expired = stores.codes.get("acme", "HOLD-THREE")
    assert expired is not None
    assert is_redeemable(expired, clock.now())
    redeemed = stores.codes.redeem("acme", "HOLD-THREE", _customer("bob"))

    assert redeemed.is_spent
    assert redeemed.used_by == "bob"
    assert redeemed.holds == ()
    with pytest.raises(TransitionRefused):  # ann's hold was taken over: her use is gone
        stores.codes.redeem("acme", "HOLD-THREE", _customer("ann"))
    with pytest.raises(NothingHeld):
        stores.codes.release("acme", "HOLD-THREE", _customer("ann"))


def test_a_release_gives_the_use_back_once(stores: Stores) -> None:
    _add(stores, "HOLD-FOUR")
    stores.codes.reserve("acme", "HOLD-FOUR", _customer("ann"), clock.now() + HOLD)

    released = stores.codes.release("acme", "HOLD-FOUR", _customer("ann"))
    with pytest.raises(NothingHeld):
        stores.codes.release("acme", "HOLD-FOUR", _customer("ann"))
    redeemed = stores.codes.redeem("acme", "HOLD-FOUR", _customer("bob"))

    assert released.uses_left == 1
    assert released.holds == ()
    assert redeemed.is_spent
    assert redeemed.used_by == "bob"


def test_reserving_again_moves_the_deadline_and_takes_no_second_use(stores: Stores) -> None:
    _add(stores, "HOLD-FIVE", uses=3)
    first = stores.codes.reserve("acme", "HOLD-FIVE", _customer("ann"), clock.now() + HOLD)
    again = stores.codes.reserve("acme", "HOLD-FIVE", _customer("ann"), clock.now() + 2 * HOLD)

    assert (first.uses_left, again.uses_left) == (2, 2)
    assert again.holds[0].until > first.holds[0].until


def test_a_multi_use_codes_held_uses_leave_the_free_ones_to_others(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(stores, "HOLD-SIX", uses=3)
    for holder in ("ann", "bob"):
        stores.codes.reserve("acme", "HOLD-SIX", _customer(holder), clock.now() + HOLD)

    stores.codes.redeem("acme", "HOLD-SIX", _customer("cat"))  # the one free use
    with pytest.raises(TransitionRefused):
        stores.codes.redeem("acme", "HOLD-SIX", _customer("dan"))
    stores.codes.redeem("acme", "HOLD-SIX", _customer("ann"))  # through her hold
    _later(monkeypatch, HOLD + timedelta(seconds=1))
    last = stores.codes.redeem("acme", "HOLD-SIX", _customer("dan"))  # bob's hold expired

    assert last.is_spent
    assert last.holds == ()
    with pytest.raises(TransitionRefused):
        stores.codes.redeem("acme", "HOLD-SIX", _customer("bob"))


def _reserve_then_redeem(
    endpoint: str, table_name: str, value: str, customers: list[str]
) -> Counter[str]:
    """Each customer of this process reserves a use, then redeems it if it got one; and each
    also tries to redeem without a hold, which must never take a held use."""
    client = process_client(endpoint, len(customers))

    def caller(name: str) -> Counter[str]:
        mine = thread_stores(client, table_name)
        outcomes: Counter[str] = Counter()
        try:
            mine.codes.reserve("acme", value, _customer(name), clock.now() + HOLD)
            outcomes["held"] += 1
        except NoUseToHold:
            outcomes["not held"] += 1
            try:
                mine.codes.redeem("acme", value, _customer(name))
                outcomes["redeemed without a hold"] += 1
            except TransitionRefused:
                outcomes["refused"] += 1
            return outcomes
        except StoreUnavailable:
            outcomes["unavailable"] += 1
            return outcomes
        mine.codes.redeem("acme", value, _customer(name))
        outcomes["redeemed through the hold"] += 1
        return outcomes

    with ThreadPoolExecutor(len(customers)) as executor:
        return sum(executor.map(caller, customers), Counter())


def test_given_4_uses_and_32_customers_in_4_processes_then_exactly_4_hold_and_redeem(
    stores: Stores, dynamodb_local: DynamoDBLocal
) -> None:
    _add(stores, "HOLD-RACE", uses=4)

    outcomes = in_processes(
        _reserve_then_redeem,
        [
            (
                dynamodb_local.endpoint,
                stores.table_name,
                "HOLD-RACE",
                [f"p{p}-c{c}" for c in range(8)],
            )
            for p in range(4)
        ],
    )
    spent = stores.codes.get("acme", "HOLD-RACE")

    assert outcomes["unavailable"] == 0
    assert outcomes["held"] == outcomes["redeemed through the hold"] == 4
    assert outcomes["redeemed without a hold"] == 0  # every free use was held, then taken
    assert outcomes["not held"] == outcomes["refused"] == 28
    assert spent is not None
    assert spent.is_spent
    assert spent.uses_left == 0
    assert spent.holds == ()


@pytest.mark.parametrize("point", ["UpdateItem", "TransactWriteItems"], ids=["plain", "receipt"])
def test_given_a_reservations_answer_was_dropped_once_then_it_is_answered_as_its_success(
    stores: Stores, faulty: FaultyStores, point: str
) -> None:
    _add(stores, "HOLD-LOST", uses=2)
    receipt = Receipt("maestra#lost", "r-1", "fp") if point == "TransactWriteItems" else None
    injector = FaultInjector(SEED, planned={point: [DROPPED, DROPPED]}, tally=False)
    writer = faulty(injector)
    ann = _customer("ann")._replace(receipt=receipt)

    held = writer.codes.reserve("acme", "HOLD-LOST", ann, clock.now() + HOLD)
    released = writer.codes.release(
        "acme", "HOLD-LOST", ann._replace(receipt=receipt and receipt._replace(key="r-2"))
    )

    assert injector.injected[(point, DROPPED)] == 2  # both writes' answers were lost
    assert (held.uses_left, [h.holder.identifier for h in held.holds]) == (1, ["ann"])
    assert (released.uses_left, released.holds) == (2, ())


def test_given_every_answer_of_a_reservation_was_dropped_then_it_is_unknown_and_held_once(
    stores: Stores, faulty: FaultyStores
) -> None:
    _add(stores, "HOLD-UNKNOWN", uses=2)
    injector = FaultInjector(SEED, planned={"UpdateItem": [DROPPED] * 16}, tally=False)

    with pytest.raises(StoreUnavailable):
        faulty(injector).codes.reserve("acme", "HOLD-UNKNOWN", _customer("ann"), clock.now() + HOLD)
    shown = stores.codes.get("acme", "HOLD-UNKNOWN")

    assert shown is not None
    assert (shown.uses_left, [h.holder.identifier for h in shown.holds]) == (1, ["ann"])


def test_a_held_available_code_is_never_handed_out_by_a_claim_even_from_a_stale_page(
    stores: Stores, local_client: Any
) -> None:
    one_shard = pool(shard_count=1)
    stores.catalog.put_pool(one_shard)
    stores.codes.add("acme", {"spring": one_shard}, new_codes("spring", 2, "HOLD-CLAIM"), ACTOR)
    instance = Stores(local_client, stores.table_name)  # a function instance with its own page
    first = instance.codes.claim(one_shard, _customer("ann"))  # reads both, caches the other
    (other,) = {"HOLD-CLAIM00000", "HOLD-CLAIM00001"} - {first.value}
    stores.codes.reserve("acme", other, _customer("bob"), clock.now() + HOLD)

    with pytest.raises(NoCodeAvailable):
        instance.codes.claim(one_shard, _customer("cat"))
    held = stores.codes.get("acme", other)

    assert held is not None
    assert held.state is CodeState.AVAILABLE
    assert held.issued_to is None
    assert [hold.holder.identifier for hold in held.holds] == ["bob"]


def test_the_holders_late_redeem_of_an_expired_code_is_told_it_expired_not_that_it_is_held(
    stores: Stores,
) -> None:
    ending = pool()
    stores.catalog.put_pool(ending)
    closes = moment(1)
    stores.codes.add(
        "acme", {"spring": ending}, [NewCode("spring", "HOLD-LATE", Window(end=closes))], ACTOR
    )
    stores.codes.reserve("acme", "HOLD-LATE", _customer("ann"), clock.now() + HOLD)
    late = _customer("ann")._replace(at=closes + timedelta(hours=1))
    step = Step(StepKind.REDEEM, "acme", "maestra", "HOLD-LATE", None, Window(), late)

    outcome = perform_step(stores.services(), step)
    others = perform_step(stores.services(), step._replace(issuance=_customer("bob")))

    assert isinstance(outcome.refusal, CodeExpired)
    assert isinstance(others.refusal, UsesHeld)
