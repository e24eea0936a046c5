"""Pool inventory (issue 17, item 1) from DynamoDB Local's change stream, through the real
consumer: counts equal a full recount after a random mix of operations from separate processes,
however the records are delivered (retried, split, twice at once); the claim stays one write;
``promo-admin pools`` reads one item a pool; ``promo-admin reconcile`` repairs drift."""

import random
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from promo.domain import clock
from promo.domain.errors import PromoError
from promo.domain.inventory import Bucket
from promo.domain.models import Code, Issuance, NewCode
from promo.services import inventory
from promo.store import keys
from promo.store.codes.bulk_staging import new_code_item
from promo.store.codes.visibility import Stage
from promo.store.pool_counts import PoolCountStore
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.processes import in_processes, process_client, thread_stores
from tests.support.stream import Stream
from tests.support.tables import Stores
from tools import admin
from tools.dynamodb_local import DynamoDBLocal
from tools.local_stream import LambdaRecord, deliver

SPRING = pool("acme", "spring", shard_count=2, low_watermark=5)
PARTY = pool("acme", "party", offer_id=3, redemptions_per_code=3)
POOLS = {SPRING.pool_id: SPRING, PARTY.pool_id: PARTY}
WORKERS = 2
OPERATIONS = 40


@pytest.fixture
def stores(streamed_stores: Stores) -> Stores:
    streamed_stores.catalog.put_tenant(tenant("acme"))
    for each in POOLS.values():
        streamed_stores.catalog.put_pool(each)
    return streamed_stores


def counts(stores: Stores, pool_id: str) -> dict[str, int]:
    found = PoolCountStore(stores.table, stores.codes.outcomes).get("acme", pool_id)
    assert found is not None
    return {name: value for name, value in found.counts.items() if value}


def recount(stores: Stores, pool_id: str) -> dict[str, int]:
    found = PoolCountStore(stores.table, stores.codes.outcomes).recount("acme", pool_id)
    return {name: value for name, value in found.items() if value}


# ---------------------------------------------------------------------- a random mix


def stage_without_commit(mine: Stores, values: list[str]) -> None:
    """A bulk add whose writer died after staging: no commit record, codes held."""
    adds = mine.codes._adds
    first = adds.allocate_numbers("acme", len(values))
    stamped = clock.to_stored(clock.now())
    items = [
        new_code_item(
            keys.code_key("acme", value),
            SPRING,
            NewCode("spring", value),
            first + i,
            stamped,
            ACTOR,
        )
        for i, value in enumerate(values)
    ]
    stage = Stage(uuid.uuid4().hex, int(time.time()) + 3600, first, len(values), ("spring",))
    adds.write_codes(items, stage)


def _operate(endpoint: str, table_name: str, worker: int, seed: int) -> Counter[str]:
    """``OPERATIONS`` random operations of every kind from this process, on codes of both
    pools: adds (one bulk, staged and committed), claims, issues, redemptions, rollbacks,
    blocks, deletes, and (worker 0) a stage whose writer died."""
    mine = thread_stores(process_client(endpoint, 2), table_name)
    rng = random.Random(seed * 100 + worker)
    mine_codes: list[str] = []
    done: Counter[str] = Counter()
    serial = 0

    def fresh(pool_id: str, count: int) -> list[NewCode]:
        nonlocal serial
        serial += count
        return [NewCode(pool_id, f"W{worker}-{serial - i}") for i in range(count)]

    def known() -> str:
        return rng.choice(mine_codes)

    def add(count: int) -> None:
        codes = fresh(rng.choice(list(POOLS)), count)
        mine.codes.add("acme", POOLS, codes, f"worker:{worker}")
        mine_codes.extend(code.value for code in codes)

    def delete() -> None:
        code = mine.codes.get("acme", known())
        if code is not None:
            mine.codes.delete("acme", [code.uuid], f"worker:{worker}")

    operations: dict[str, Any] = {
        "add": lambda: add(rng.randint(1, 4)),
        "claim": lambda: mine.codes.claim(SPRING, Issuance(moment(), f"worker:{worker}")),
        "issue": lambda: mine.codes.issue("acme", known(), Issuance(moment(), ACTOR)),
        "redeem": lambda: mine.codes.redeem("acme", known(), Issuance(moment(), ACTOR)),
        "rollback": lambda: mine.codes.roll_back_redemption(
            "acme", known(), Issuance(moment(), ACTOR), "test"
        ),
        "block": lambda: mine.codes.block("acme", known(), moment(), ACTOR),
        "delete": delete,
    }
    add(4)
    add(55)  # over 50 codes: staged, then committed by one record
    done["add"] += 2
    if worker == 0:
        stage_without_commit(mine, [f"W0-DIED-{i}" for i in range(3)])
    weights = {"add": 3, "claim": 4, "issue": 2, "redeem": 4, "rollback": 2, "block": 1}
    weights["delete"] = 1
    for _ in range(OPERATIONS):
        name = rng.choices(list(weights), list(weights.values()))[0]
        try:
            operations[name]()
            done[name] += 1
        except PromoError:
            done[f"{name} refused"] += 1
    return done


def deliver_with_retries(stream: Stream, records: list[LambdaRecord], rng: random.Random) -> None:
    """Batches of random sizes; some delivered twice, some first in part (a split batch) and
    then whole, as Lambda does after failures."""
    start = 0
    while start < len(records):
        batch = records[start : start + rng.randint(1, 40)]
        trick = rng.random()
        if trick < 0.25:
            deliver(stream.handle, batch, len(batch), 50)
        elif trick < 0.45:
            deliver(stream.handle, batch[: len(batch) // 2 + 1], len(batch), 50)
        deliver(stream.handle, batch, len(batch), 50)
        start += len(batch)


def test_given_a_random_mix_of_operations_from_separate_processes_then_counts_equal_a_recount(
    stores: Stores, dynamodb_local: DynamoDBLocal
) -> None:
    stream = Stream(stores)
    done = in_processes(
        _operate, [(dynamodb_local.endpoint, stores.table_name, w, 17) for w in range(WORKERS)]
    )
    records = stream.read()
    rng = random.Random(17)

    # The same records delivered by two consumer instances at once (their own clients and
    # caches, as two invocations on two shards): one with retries and split batches, the other
    # 25 at a time.
    twin = Stream(stores.fresh())
    with ThreadPoolExecutor(1) as other:
        second = other.submit(deliver, twin.handle, records, 25, 50)
        deliver_with_retries(stream, records, rng)
        second.result()

    assert done["claim"] > 5
    assert done["redeem"] > 5
    assert done["rollback"] + done["block"] + done["delete"] > 3
    for pool_id in POOLS:
        assert counts(stores, pool_id) == recount(stores, pool_id), pool_id
    assert counts(stores, "spring")[Bucket.STAGED] == 3  # the stage whose writer died
    codes = stores.table.scan(
        FilterExpression="sk = :code", ExpressionAttributeValues={":code": {"S": "CODE"}}
    )["Items"]
    assert sum(sum(counts(stores, p).values()) for p in POOLS) == len(codes)
    repairs = admin.reconcile_pools(stores.services(), "acme")
    assert [repair.changed for repair in repairs] == [{}, {}]


# ---------------------------------------------------------------------- one thing at a time


def test_a_retried_batch_of_real_stream_records_is_counted_once(stores: Stores) -> None:
    stream = Stream(stores)
    stores.codes.add("acme", POOLS, new_codes("spring", 5, "RETRY"), ACTOR)
    stores.codes.claim(SPRING, Issuance(moment(), ACTOR))
    stores.codes.claim(SPRING, Issuance(moment(), ACTOR))
    records = stream.read()

    for _ in range(3):  # delivered, then twice more as after lost answers
        assert stream.invoke(records) == {"batchItemFailures": []}
    stream.invoke(records[2:4])  # and a part of it, as a split batch

    assert counts(stores, "spring") == {"available": 3, "issued": 2}


def test_codes_held_by_an_uncommitted_bulk_add_are_staged_until_it_commits_or_is_cleared(
    stores: Stores,
) -> None:
    stream = Stream(stores)
    stage_without_commit(stores, ["HELD-1", "HELD-2"])
    stores.codes.add("acme", POOLS, new_codes("spring", 60, "BULK"), ACTOR)  # staged, committed
    stream.settle()
    assert counts(stores, "spring") == {"available": 60, "staged": 2}

    item = stores.table.get({"pk": {"S": "T#acme#V#HELD-1"}, "sk": {"S": "CODE"}})
    assert item is not None
    batch = item["staged_batch"]["S"]
    stores.codes.outcomes.abort("acme", batch)  # a reader gave up on it, and clears it
    stores.codes.outcomes.clear_staged("acme", item)  # the one code it met clears the batch
    assert stores.table.get({"pk": {"S": "T#acme#V#HELD-2"}, "sk": {"S": "CODE"}}) is None
    stream.settle()

    assert counts(stores, "spring") == {"available": 60}
    assert recount(stores, "spring") == {"available": 60}


def test_multi_use_redemptions_and_rollbacks_move_a_code_between_buckets_once(
    stores: Stores,
) -> None:
    stream = Stream(stores)
    stores.codes.add("acme", POOLS, [NewCode("party", "P-1"), NewCode("spring", "S-1")], ACTOR)
    use = Issuance(moment(), ACTOR)
    for _ in range(3):
        stores.codes.redeem("acme", "P-1", use)  # used from the first, spent at the third
    stores.codes.roll_back_redemption("acme", "P-1", use, "refund")  # still used, a use back
    stores.codes.redeem("acme", "S-1", use)
    stores.codes.roll_back_redemption("acme", "S-1", use, "refund")  # single use: issued again
    stream.settle()

    assert counts(stores, "party") == {"used": 1}
    assert counts(stores, "spring") == {"issued": 1}


def test_a_claim_is_still_one_write_with_the_stream_on(stores: Stores) -> None:
    stores.codes.add("acme", POOLS, new_codes("spring", 5, "ONE"), ACTOR)
    calls: Counter[str] = Counter()
    stores.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
    )
    stores.codes.claim(SPRING, Issuance(moment(), ACTOR))  # reads a page of the index
    calls.clear()

    claimed: Code = stores.codes.claim(SPRING, Issuance(moment(), ACTOR))

    assert claimed.value.startswith("ONE")
    assert calls == Counter({"UpdateItem": 1})


# ---------------------------------------------------------------------- promo-admin


def test_pools_reads_one_item_a_pool_and_no_code(stores: Stores) -> None:
    stream = Stream(stores)
    stores.codes.add("acme", POOLS, new_codes("spring", 200, "MANY"), ACTOR)
    stream.settle()
    svc = stores.services()
    calls: Counter[str] = Counter()
    stores.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
    )

    found = {p.pool_id: c for p, c in admin.pool_counts(svc, "acme")}

    assert found["spring"] is not None
    assert found["spring"].of(Bucket.AVAILABLE) == 200
    assert found["party"] is None  # never changed: no counts yet
    # The pools (one query and one batch read), then one read of counts a pool.
    assert calls == Counter({"Query": 1, "BatchGetItem": 1, "GetItem": 2})


def test_reconcile_repairs_drift_says_what_it_changed_and_then_finds_none(
    stores: Stores, dynamodb_local: DynamoDBLocal, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = Stream(stores)
    stores.codes.add("acme", POOLS, new_codes("spring", 6, "DRIFT"), ACTOR)
    stores.codes.claim(SPRING, Issuance(moment(), ACTOR))
    stream.settle()
    stores.table.update(  # drift: as a batch given up on after its retries would leave
        Key={"pk": {"S": "INVENTORY#acme#spring"}, "sk": {"S": "COUNTS"}},
        UpdateExpression="ADD available :more, version :one",
        ExpressionAttributeValues={":more": {"N": "4"}, ":one": {"N": "1"}},
    )
    command = ["--table", stores.table_name, "--endpoint-url", dynamodb_local.endpoint]

    assert admin.main([*command, "reconcile", "--tenant", "acme", "--pool", "spring"]) == 0
    assert admin.main([*command, "reconcile", "--tenant", "acme"]) == 0

    printed = [line for line in capsys.readouterr().out.splitlines() if line[:1] != "{"]  # no EMF
    assert printed[0] == "acme/spring: repaired available 9 -> 5"
    assert "acme/spring: counts match the table (6 codes)" in printed
    assert counts(stores, "spring") == {"available": 5, "issued": 1}


def test_reconcile_does_not_overwrite_counts_that_move_while_it_recounts(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = Stream(stores)
    stores.codes.add("acme", POOLS, new_codes("spring", 3, "BUSY"), ACTOR)
    stream.settle()
    real_recount = PoolCountStore.recount

    def recount_while_a_batch_lands(self: PoolCountStore, tenant_id: str, pool_id: str) -> Any:
        found = real_recount(self, tenant_id, pool_id)
        stores.codes.claim(SPRING, Issuance(moment(), ACTOR))
        stream.settle()  # the consumer counts the claim meanwhile
        return {**found, "available": found["available"] + 7}  # and the recount is off

    monkeypatch.setattr(PoolCountStore, "recount", recount_while_a_batch_lands)

    with pytest.raises(inventory.PoolBusy):
        inventory.reconcile(stores.services(), "acme", "spring")
    assert counts(stores, "spring") == {"issued": 3}  # as the stream counted, not overwritten
