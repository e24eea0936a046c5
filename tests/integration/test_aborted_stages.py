"""A bulk add whose writer is killed leaves nothing behind once its batch is aborted (issue 15,
item 3): no code and no id pointer of it, whatever moment the writer died at, and the add can
be sent again. A lookup by the id of a code that never became real finds nothing, never
another code.

The writer runs in a process of its own and is killed (SIGKILL: no ``finally``, no rollback),
as a Lambda instance is at its timeout; the reader and the re-sent add are another instance.
"""

import multiprocessing
import os
import signal
import threading
import time
from types import SimpleNamespace
from typing import Any, NoReturn
from uuid import UUID

import pytest

from promo.domain.errors import DuplicateValues
from promo.domain.ids import code_uuid
from promo.domain.models import NewCode
from promo.services.listing import CodeQuery, list_codes
from promo.store import keys
from promo.store.codes import visibility
from promo.store.codes.bulk_staging import BulkAdds
from promo.store.items import s
from tests.integration.test_faults import REFUSED, SEED, FaultInjector, FaultyStores, faulty
from tests.support.builders import ACTOR, new_codes, pool, tenant
from tests.support.processes import process_client, thread_stores
from tests.support.tables import Stores
from tools.dynamodb_local import DynamoDBLocal

pytestmark = pytest.mark.integration

__all__ = ["faulty"]  # the fixture, shared with test_faults

SIZE = 1000  # Mews' largest add: 10 stage transactions of 100 codes, then 40 pointer writes
PREFIX = "KILLED"
# Where the writer dies.
BEFORE_ANY_STAGE = "before any stage lands"
MID_STAGES = "after 5 of 10 stages"
MID_POINTERS = "after every stage and 20 of 40 pointer writes"
# The first stage is slow, so the pointer writes of its codes come before it lands, if they
# do not wait for it.
SLOW_FIRST_STAGE = "after 4 pointer writes, the first stage slow"
EVERY_STAGE = "after every stage, before the commit"
COMMITTED = "right after the commit"


def _die() -> NoReturn:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("a killed process runs no further")


def _add_then_die(endpoint: str, table_name: str, point: str) -> None:
    """The writer's process: a 1,000-code add through the function's own bulk-write threads,
    killed at ``point``."""
    writer = thread_stores(process_client(endpoint, 4), table_name)
    real_commit = BulkAdds._commit
    lock = threading.Lock()

    def die_after(real: Any, times: int) -> Any:
        done: list[object] = []

        def write_then_die(self: BulkAdds, *args: Any) -> Any:
            outcome = real(self, *args)
            with lock:
                done.append(outcome)
                if len(done) == times:
                    _die()
            return outcome

        return write_then_die

    def commit_then_die(self: BulkAdds, *args: Any) -> bool:
        real_commit(self, *args)
        _die()

    with pytest.MonkeyPatch.context() as patch:
        if point == BEFORE_ANY_STAGE:  # its ids are allocated, nothing is written
            patch.setattr(BulkAdds, "_add_staged", lambda *_: _die())
        elif point == MID_STAGES:
            patch.setattr(BulkAdds, "_stage_chunk", die_after(BulkAdds._stage_chunk, 5))
        elif point == MID_POINTERS:
            patch.setattr(BulkAdds, "_put_pointers", die_after(BulkAdds._put_pointers, 20))
        elif point == SLOW_FIRST_STAGE:
            real_stage = BulkAdds._stage_chunk

            def slow_first(self: BulkAdds, chunk: Any, *args: Any) -> Any:
                if chunk[0][0]["value"]["S"] == f"{PREFIX}00000":
                    time.sleep(6)
                return real_stage(self, chunk, *args)

            patch.setattr(BulkAdds, "_stage_chunk", slow_first)
            patch.setattr(BulkAdds, "_put_pointers", die_after(BulkAdds._put_pointers, 4))
        elif point == EVERY_STAGE:
            patch.setattr(BulkAdds, "_commit", lambda *_: _die())
        else:
            patch.setattr(BulkAdds, "_commit", commit_then_die)
        writer.codes.add("acme", {"spring": pool()}, new_codes("spring", SIZE, PREFIX), ACTOR)


def kill_a_writer(dynamodb_local: DynamoDBLocal, stores: Stores, point: str) -> None:
    context = multiprocessing.get_context("spawn")
    writer = context.Process(
        target=_add_then_die, args=(dynamodb_local.endpoint, stores.table_name, point)
    )
    writer.start()
    writer.join(120)
    assert writer.exitcode == -signal.SIGKILL  # it was killed, it did not finish or fail


def items_numbered(stores: Stores, numbers: range) -> dict[str, list[dict[str, Any]]]:
    """Every item of the table that carries one of ``numbers``: codes and id pointers."""
    found: dict[str, list[dict[str, Any]]] = {"codes": [], "pointers": []}
    for item in stores.table.paginate(stores.table.scan, ConsistentRead=True):
        if item["sk"]["S"] == "CODE" and "number" in item:
            if int(item["number"]["N"]) in numbers:
                found["codes"].append(item)
        elif item["sk"]["S"] == "ID" and int(item["pk"]["S"].rsplit("#N#", 1)[1]) in numbers:
            found["pointers"].append(item)
    return found


def past_every_deadline(monkeypatch: pytest.MonkeyPatch, stores: Stores) -> None:
    expiry = stores.settings.staged_write_expiry_seconds
    later = SimpleNamespace(time=lambda: time.time() + expiry + 1)
    monkeypatch.setattr(visibility, "time", later)


@pytest.fixture
def stores(local_stores: Stores) -> Stores:
    local_stores.catalog.put_tenant(tenant("acme"))
    local_stores.catalog.put_pool(pool(shard_count=4))
    return local_stores


@pytest.mark.parametrize(
    ("point", "trigger"),
    [
        (BEFORE_ANY_STAGE, "re-sent add"),
        (MID_STAGES, "read"),
        (MID_STAGES, "re-sent add"),
        (MID_POINTERS, "read"),
        (MID_POINTERS, "re-sent add"),
        (SLOW_FIRST_STAGE, "re-sent add"),
        (EVERY_STAGE, "read"),
        (EVERY_STAGE, "re-sent add"),
    ],
)
def test_given_the_writer_was_killed_then_the_abort_leaves_no_code_or_pointer_of_its_batch(
    stores: Stores,
    dynamodb_local: DynamoDBLocal,
    monkeypatch: pytest.MonkeyPatch,
    point: str,
    trigger: str,
) -> None:
    batch = new_codes("spring", SIZE, PREFIX)
    values = [code.value for code in batch]
    before = stores.codes.created_count("acme")
    numbers = range(before + 1, before + SIZE + 1)  # the ids the writer allocated

    kill_a_writer(dynamodb_local, stores, point)

    assert stores.codes.created_count("acme") == before + SIZE
    left = items_numbered(stores, numbers)
    staged = len(left["codes"])
    if point == BEFORE_ANY_STAGE:
        assert staged == 0
    elif point == MID_STAGES:  # stages in flight when it died may have landed too
        assert 500 <= staged < SIZE
    elif point != SLOW_FIRST_STAGE:
        assert staged == SIZE
    if point == MID_POINTERS:
        assert 500 <= len(left["pointers"]) < SIZE
    # A pointer is written once its code has landed: none without its code.
    assert {p["uuid"]["S"] for p in left["pointers"]} <= {c["uuid"]["S"] for c in left["codes"]}
    # Uncommitted: no lookup, by value or by id, finds any of it.
    aborted_ids = [UUID(code["uuid"]["S"]) for code in left["codes"]]
    reader = stores.fresh()
    assert all(reader.codes.get_by_number("acme", k) is None for k in numbers[:60])
    assert reader.codes.get_many_by_uuid("acme", aborted_ids) == {}

    past_every_deadline(monkeypatch, stores)
    if trigger == "read" and staged:
        met = left["codes"][-1]["value"]["S"]
        assert reader.codes.get("acme", met) is None  # aborts the batch and clears it
        assert items_numbered(stores, numbers) == {"codes": [], "pointers": []}
    added = stores.fresh().codes.add("acme", {"spring": pool()}, batch, ACTOR)

    assert items_numbered(stores, numbers) == {"codes": [], "pointers": []}
    assert [code.value for code in added] == values
    assert {code.number for code in added}.isdisjoint(numbers)
    after = stores.fresh()
    assert {c.value for _, c in after.codes.list("acme", ["spring"])} == set(values)
    # The ids of the aborted codes name nothing, not the codes now holding their values.
    assert after.codes.get_many_by_uuid("acme", aborted_ids) == {}
    assert all(after.codes.get_by_uuid("acme", code_id) is None for code_id in aborted_ids[:60])
    assert all(after.codes.get_by_number("acme", k) is None for k in numbers[:60])
    first = after.codes.get_by_number("acme", added[0].number)
    assert first is not None
    assert first.uuid == added[0].uuid


def test_given_the_writer_was_killed_after_its_commit_then_nothing_of_the_batch_is_cleared(
    stores: Stores, dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = new_codes("spring", SIZE, PREFIX)
    before = stores.codes.created_count("acme")
    numbers = range(before + 1, before + SIZE + 1)

    kill_a_writer(dynamodb_local, stores, COMMITTED)
    past_every_deadline(monkeypatch, stores)
    reader = stores.fresh()
    code = reader.codes.get("acme", batch[-1].value)  # would abort and clear if it could
    with pytest.raises(DuplicateValues):
        reader.codes.add("acme", {"spring": pool()}, batch, ACTOR)

    left = items_numbered(stores, numbers)
    assert (len(left["codes"]), len(left["pointers"])) == (SIZE, SIZE)
    assert code is not None
    assert reader.codes.get_by_number("acme", code.number) == code
    found = reader.codes.get_many_by_uuid("acme", [UUID(c["uuid"]["S"]) for c in left["codes"]])
    assert {c.value for c in found.values()} == {c.value for c in batch}


def test_given_an_id_pointer_naming_another_code_or_none_then_its_id_finds_nothing(
    stores: Stores,
) -> None:
    """Pointers an add left before aborted stages were cleared whole: the value one names may
    since belong to a code with another id, or to none. The lookup must not answer with it."""
    (live,) = stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "TAKEN")], ACTOR)
    first = stores.codes._adds.allocate_numbers("acme", 2)  # ids of an add that never landed
    orphans = {first: "TAKEN", first + 1: "NEVER-ADDED"}
    orphan_ids = [code_uuid(number) for number in orphans]
    for (number, value), code_id in zip(orphans.items(), orphan_ids, strict=True):
        stores.table.put(
            Item={**keys.number_key("acme", number), "value": s(value), "uuid": s(str(code_id))}
        )
    reader = stores.fresh()

    assert all(reader.codes.get_by_number("acme", number) is None for number in orphans)
    assert all(reader.codes.get_by_uuid("acme", code_id) is None for code_id in orphan_ids)
    assert reader.codes.get_many_by_uuid("acme", [*orphan_ids, live.uuid]) == {live.uuid: live}
    query = CodeQuery(["acme"], None, "mews", [*orphan_ids, live.uuid], None, 100, None)
    assert [code.uuid for code in list_codes(reader.services(), query).codes] == [live.uuid]
    assert reader.codes.get_by_number("acme", live.number) == live


class _Killed(BaseException):
    """The writer's end, in this process: no rollback runs."""


def test_given_a_reader_that_may_not_write_meets_an_expired_stage_then_it_finds_nothing_and_fails_not(
    stores: Stores, faulty: FaultyStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validate and the listings may only read (template.yaml), so the abort record a reader
    writes for a stage past its deadline is refused them: they must answer as the table
    stands, the codes absent, not fail; a function that may write settles the batch later."""
    batch = new_codes("spring", 120, "UNDECIDED")
    before = stores.codes.created_count("acme")
    numbers = range(before + 1, before + len(batch) + 1)

    def killed(*_: Any) -> NoReturn:
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr(BulkAdds, "_commit", killed)
        with pytest.raises(_Killed):
            stores.fresh().codes.add("acme", {"spring": pool()}, batch, ACTOR)
    past_every_deadline(monkeypatch, stores)
    refused_writes = FaultInjector(SEED, planned={"PutItem:commit": [REFUSED] * 16}, tally=False)
    reader = faulty(refused_writes)

    assert reader.codes.get("acme", batch[0].value) is None
    assert list(reader.codes.list("acme", ["spring"])) == []
    assert refused_writes.injected[("PutItem:commit", REFUSED)] >= 1  # the abort was refused
    assert len(items_numbered(stores, numbers)["codes"]) == len(batch)  # nothing cleared yet

    assert stores.fresh().codes.get("acme", batch[0].value) is None  # may write: aborts
    assert items_numbered(stores, numbers) == {"codes": [], "pointers": []}
