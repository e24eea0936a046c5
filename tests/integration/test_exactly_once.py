"""Exactly-once guarantees under real concurrency, against AWS DynamoDB Local.

Each thread holds its own stores, as separate Lambda instances hold their own caches and
candidate pages: the worst case for collisions on the claim path. The claim tests run in
separate spawned processes too, each with its own client, as separate Lambda instances are.
"""

import multiprocessing
import queue
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from promo.domain.errors import (
    ConcurrentChange,
    DuplicateValues,
    NoCodeAvailable,
    NotAvailableForIssue,
)
from promo.domain.models import Issuance, NewCode
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.processes import process_client, thread_stores
from tests.support.tables import Stores
from tools.dynamodb_local import DynamoDBLocal

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


def claim_until_none(
    endpoint: str, table_name: str, threads: int, start_line: Any, answers: Any
) -> None:
    """A spawned process: ``threads`` callers, each with its own stores over the process's
    client, claim from the spring pool until told none is available; the values each got."""
    client = process_client(endpoint, threads)
    callers = [thread_stores(client, table_name) for _ in range(threads)]
    the_pool = callers[0].catalog.get_pool("acme", "spring")
    assert the_pool is not None

    def caller(mine: Stores) -> list[str]:
        issued: list[str] = []
        while True:
            try:
                issued.append(mine.codes.claim(the_pool, Issuance(moment(), ACTOR)).value)
            except NoCodeAvailable:
                return issued

    start_line.wait()
    with ThreadPoolExecutor(threads) as executor:
        answers.put(list(executor.map(caller, callers)))


@pytest.mark.parametrize(
    ("processes", "threads", "size"),
    [(4, 2, 400), (6, 1, 40)],
    ids=["4 processes x 2 callers on 400", "6 processes on an end game of 40"],
)
def test_given_separate_processes_on_a_pool_then_each_code_is_issued_exactly_once(
    stores: Stores, dynamodb_local: DynamoDBLocal, processes: int, threads: int, size: int
) -> None:
    the_pool = pool(shard_count=4)
    stores.catalog.put_pool(the_pool)
    added = stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", size), ACTOR)
    context = multiprocessing.get_context("spawn")
    start_line, answers = context.Barrier(processes), context.Queue()
    arguments = (dynamodb_local.endpoint, stores.table_name, threads, start_line, answers)
    spawned = [context.Process(target=claim_until_none, args=arguments) for _ in range(processes)]
    for process in spawned:
        process.start()
    try:
        results = [answers.get(timeout=120) for _ in spawned]
    except queue.Empty:
        pytest.fail(f"a process died: exit codes {[p.exitcode for p in spawned]}")
    finally:
        for process in spawned:
            process.join(timeout=30)

    per_caller = [values for callers in results for values in callers]
    issued = [value for values in per_caller for value in values]
    assert Counter(issued).most_common(1)[0][1] == 1  # no value issued twice
    assert sorted(issued) == sorted(code.value for code in added)  # and every one issued
    assert len(per_caller) == processes * threads  # every caller ended on "none available"


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
