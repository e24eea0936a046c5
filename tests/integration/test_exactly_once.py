"""Exactly-once guarantees under real concurrency, against AWS DynamoDB Local.

Each thread holds its own stores, as separate Lambda instances hold their own caches and
candidate pages: the worst case for collisions on the claim path.
"""

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from promo.domain.errors import (
    ConcurrentChange,
    DuplicateValues,
    NoCodeAvailable,
    NotAvailableForIssue,
)
from promo.domain.models import Issuance, NewCode
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.tables import Stores

pytestmark = pytest.mark.integration

CALLERS = 32
POOL_SIZE = 500


@pytest.fixture
def stores(local_stores: Stores) -> Stores:
    local_stores.catalog.put_tenant(tenant("acme"))
    return local_stores


@pytest.mark.parametrize("round_", range(5))
def test_given_32_callers_on_a_pool_of_500_then_exactly_500_distinct_codes_are_issued(
    stores: Stores, round_: int
) -> None:
    the_pool = pool(shard_count=4)
    stores.catalog.put_pool(the_pool)
    added = stores.codes.add(
        "acme", {"spring": the_pool}, new_codes("spring", POOL_SIZE, f"R{round_}-"), ACTOR
    )
    start = threading.Barrier(CALLERS)

    def caller(_: int) -> tuple[list[str], bool]:
        mine = stores.fresh()
        issued: list[str] = []
        start.wait()
        while True:
            try:
                issued.append(mine.codes.claim(the_pool, Issuance(moment(), ACTOR)).value)
            except NoCodeAvailable:
                return issued, True

    with ThreadPoolExecutor(CALLERS) as executor:
        results = list(executor.map(caller, range(CALLERS)))

    issued = [value for values, _ in results for value in values]
    assert len(issued) == POOL_SIZE
    assert Counter(issued).most_common(1)[0][1] == 1  # no value issued twice
    assert set(issued) == {code.value for code in added}
    assert all(told_none for _, told_none in results)  # every caller ended on "none available"


def test_given_two_callers_issuing_the_same_value_then_exactly_one_wins(stores: Stores) -> None:
    the_pool = pool()
    stores.catalog.put_pool(the_pool)
    stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", 50, "DUEL"), ACTOR)

    for index in range(50):
        value = f"DUEL{index:05d}"
        start = threading.Barrier(2)

        def contender(_: int, value: str = value, start: threading.Barrier = start) -> str:
            mine = stores.fresh()
            start.wait()
            try:
                mine.codes.issue("acme", value, Issuance(moment(), ACTOR))
            except NotAvailableForIssue:
                return "lost"
            return "won"

        with ThreadPoolExecutor(2) as executor:
            outcomes = sorted(executor.map(contender, range(2)))
        assert outcomes == ["lost", "won"], value


@pytest.mark.parametrize("size", [40, 1000], ids=["one transaction", "staged 1000"])
def test_given_a_bulk_add_colliding_with_existing_values_then_nothing_is_written_and_each_is_named(
    stores: Stores, size: int
) -> None:
    the_pool = pool()
    stores.catalog.put_pool(the_pool)
    existing = stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", 5, "OLD"), ACTOR)
    collisions = [NewCode("spring", code.value) for code in existing[::2]]
    batch = new_codes("spring", size - len(collisions), "NEW") + collisions

    with pytest.raises(DuplicateValues) as refused:
        stores.codes.add("acme", {"spring": the_pool}, batch, ACTOR)

    assert refused.value.values == sorted(code.value for code in collisions)
    assert stores.codes.existing_values("acme", [code.value for code in batch]) == {
        c.value for c in collisions
    }
    listed = [code.value for _, code in stores.codes.list("acme", ["spring"])]
    assert sorted(listed) == sorted(code.value for code in existing)


def test_given_two_bulk_adds_racing_on_the_same_values_then_each_value_exists_once(
    stores: Stores,
) -> None:
    the_pool = pool()
    stores.catalog.put_pool(the_pool)
    batch = new_codes("spring", 300, "RACE")
    start = threading.Barrier(2)

    def adder(_: int) -> str:
        """Adds the batch as a client does: told another add of the values has not finished
        (nothing written), it retries until it is told what happened to its values."""
        mine = stores.fresh()
        start.wait()
        for _ in range(50):
            try:
                mine.codes.add("acme", {"spring": the_pool}, batch, ACTOR)
            except DuplicateValues:
                return "refused"
            except ConcurrentChange:
                time.sleep(0.05)
                continue
            return "added"
        return "still in flight"

    with ThreadPoolExecutor(2) as executor:
        outcomes = list(executor.map(adder, range(2)))

    listed = sorted(code.value for _, code in stores.codes.list("acme", ["spring"]))
    if "added" in outcomes:  # one won: every value once, the other was refused
        assert sorted(outcomes) == ["added", "refused"]
        assert listed == sorted(code.value for code in batch)
    else:  # each kept meeting the other's stage, and both rolled back every time
        assert outcomes == ["still in flight", "still in flight"]
        assert listed == []
