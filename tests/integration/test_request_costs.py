"""DynamoDB requests per operation, counted through botocore events (the targets in docs/architecture.md)."""

from collections import Counter
from typing import Any

import pytest

from promo.domain.errors import NoCodeAvailable
from promo.domain.models import Issuance, NewCode, Receipt, Window
from promo.store import keys
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.tables import Stores

pytestmark = pytest.mark.integration


class RequestCounter:
    def __init__(self, stores: Stores) -> None:
        self.calls: Counter[str] = Counter()
        self._events = stores.client.meta.events

    def __enter__(self) -> "RequestCounter":
        self._events.register("before-call.dynamodb", self._count)
        return self

    def __exit__(self, *_: Any) -> None:
        self._events.unregister("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def stores(local_stores: Stores) -> Stores:
    local_stores.catalog.put_tenant(tenant("acme"))
    return local_stores


def test_an_uncontended_claim_costs_about_one_request(stores: Stores) -> None:
    the_pool = pool(shard_count=4)
    stores.catalog.put_pool(the_pool)
    stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", 400), ACTOR)
    claims = 300

    with RequestCounter(stores) as counter:
        for _ in range(claims):
            stores.codes.claim(the_pool, Issuance(moment(), ACTOR))

    mean = counter.total / claims
    print(f"\nmean DynamoDB requests per claim: {mean:.3f} ({dict(counter.calls)})")
    assert counter.calls["UpdateItem"] == claims  # not one lost conditional write
    assert mean <= 1.2


def test_a_candidate_whose_window_closed_after_its_page_was_read_costs_no_write(
    stores: Stores,
) -> None:
    """A code's validity is written once, with the code, and the index entry carries it, so a
    claim judges it itself: a cached candidate that has expired since is passed over, never
    tried in a conditional write that could only fail."""
    the_pool = pool(shard_count=1)
    stores.catalog.put_pool(the_pool)
    pools = {"spring": the_pool}
    stores.codes.add(
        "acme", pools, new_codes("spring", 3, "SOON", Window(end=moment(1 / 24))), ACTOR
    )
    stores.codes.add("acme", pools, new_codes("spring", 3, "LATER", Window(end=moment(30))), ACTOR)
    first = stores.codes.claim(the_pool, Issuance(moment(), ACTOR))  # caches the shard's other five
    in_two_hours = moment(2 / 24)

    issued: list[str] = []
    with RequestCounter(stores) as counter:
        while len(issued) < 6:
            try:
                issued.append(stores.codes.claim(the_pool, Issuance(in_two_hours, ACTOR)).value)
            except NoCodeAvailable:
                break

    assert len(issued) == 3 - first.value.startswith("LATER")
    assert all(value.startswith("LATER") for value in issued)
    assert counter.calls["UpdateItem"] == len(issued)


def test_a_claim_with_an_idempotency_key_from_a_bulk_add_costs_one_transaction(
    stores: Stores,
) -> None:

    the_pool = pool(shard_count=4)
    stores.catalog.put_pool(the_pool)
    stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", 400), ACTOR)  # staged
    claims = 200

    with RequestCounter(stores) as counter:
        for index in range(claims):
            receipt = Receipt("maestra", f"tx-{index}", "fingerprint")
            stores.codes.claim(the_pool, Issuance(moment(), ACTOR, receipt=receipt))

    print(f"\nrequests for {claims} claims with receipts: {dict(counter.calls)}")
    # No read-back of the issued code; the bulk add's commit record is read once, then known.
    assert counter.calls["TransactWriteItems"] == claims
    assert counter.calls["GetItem"] == 1
    assert counter.total / claims <= 1.2


def test_a_lookup_by_value_costs_one_request(stores: Stores) -> None:
    the_pool = pool()
    stores.catalog.put_pool(the_pool)
    stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", 3), ACTOR)

    with RequestCounter(stores) as counter:
        assert stores.codes.get("acme", "CODE00001") is not None
        assert stores.codes.get("acme", "NOPE") is None

    assert dict(counter.calls) == {"GetItem": 2}


def test_an_empty_pool_is_reported_after_reading_each_shard_once(stores: Stores) -> None:
    the_pool = pool(shard_count=4)
    stores.catalog.put_pool(the_pool)

    with RequestCounter(stores) as counter, pytest.raises(NoCodeAvailable):
        stores.codes.claim(the_pool, Issuance(moment(), ACTOR))
    # The first shard from a random point (two ranges), the others whole: shards + 1 queries.
    assert counter.calls == Counter({"Query": 5})

    with RequestCounter(stores) as again, pytest.raises(NoCodeAvailable):
        stores.codes.claim(the_pool, Issuance(moment(), ACTOR))
    # Known small now, every shard is read whole: one query each.
    assert again.calls == Counter({"Query": 4})


def test_a_shard_read_empty_lately_is_read_after_the_others(stores: Stores) -> None:
    """An instance that read every shard empty, then codes added to one shard of four: the
    refilled shard is still found, and later pages come from it without a query of the empty
    ones (each of three later reads started at an empty shard with probability 3/4 before)."""
    the_pool = pool(shard_count=4)
    stores.catalog.put_pool(the_pool)
    with pytest.raises(NoCodeAvailable):  # every shard read empty, and remembered so
        stores.codes.claim(the_pool, Issuance(moment(), ACTOR))
    values = (f"CODE{i:05d}" for i in range(10**5))
    in_shard = [v for v in values if keys.shard_of(keys.index_position(v), 4) == 2][:200]
    codes = [NewCode("spring", value, Window()) for value in in_shard]
    stores.codes.add("acme", {"spring": the_pool}, codes, ACTOR)
    partitions: list[str] = []

    def query(params: Any, **_: Any) -> None:
        values = params.get("ExpressionAttributeValues", {})
        partitions.append(values.get(":partition", {}).get("S", "another query"))

    stores.client.meta.events.register("before-parameter-build.dynamodb.Query", query)
    try:
        stores.codes.claim(the_pool, Issuance(moment(), ACTOR))  # read empty lately, not skipped
        partitions.clear()
        for _ in range(len(codes) - 1):
            stores.codes.claim(the_pool, Issuance(moment(), ACTOR))
    finally:
        stores.client.meta.events.unregister("before-parameter-build.dynamodb.Query", query)

    assert partitions  # later pages were read, each from the shard that holds the codes
    assert set(partitions) == {keys.available_partition("acme", "spring", 2)}


def test_the_last_codes_of_a_pool_cost_no_write_on_a_stale_page(stores: Stores) -> None:
    """Another instance took the codes this one had read: it loses one write, reads afresh,
    and answers "none" without trying the rest of its stale page."""
    the_pool = pool(shard_count=1)
    stores.catalog.put_pool(the_pool)
    stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", 60), ACTOR)
    other = stores.fresh()
    stores.codes.claim(the_pool, Issuance(moment(), ACTOR))  # holds a page of the rest
    while True:
        try:
            other.codes.claim(the_pool, Issuance(moment(), ACTOR))
        except NoCodeAvailable:
            break

    with RequestCounter(stores) as counter, pytest.raises(NoCodeAvailable):
        stores.codes.claim(the_pool, Issuance(moment(), ACTOR))

    assert counter.calls == Counter({"UpdateItem": 1, "Query": 2})


def test_issuing_an_existing_code_through_a_creation_step_reads_it_once(stores: Stores) -> None:
    from promo.domain.models import Issuance, StepKind, Window
    from promo.services.issuing import Step, perform_step

    the_pool = pool()
    stores.catalog.put_pool(the_pool)
    stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", 1), ACTOR)
    svc = stores.services()
    step = Step(
        StepKind.BY_VALUE_CREATE,
        "acme",
        "maestra",
        "CODE00000",
        "spring-ext",
        Window(),
        Issuance(moment(), ACTOR),
    )
    stores.catalog.find_pool("acme", "maestra", "spring-ext")  # warm: pool and alias cached
    stores.catalog.get_pool("acme", "spring")

    with RequestCounter(stores) as counter:
        outcome = perform_step(svc, step)

    assert outcome.refusal is None
    assert dict(counter.calls) == {"GetItem": 1, "UpdateItem": 1}


def test_a_valid_validate_costs_one_read_and_a_miss_one_read_and_one_write(
    stores: Stores,
) -> None:
    from promo.services.validation import validate_code

    the_pool = pool()
    stores.catalog.put_pool(the_pool)
    stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", 1), ACTOR)
    svc = stores.services()
    device = "synctv-device:urn:synctv:devices:web:11223344"

    with RequestCounter(stores) as valid:
        for _ in range(50):
            assert validate_code(svc, "acme", "CODE00000", moment(), device)
    with RequestCounter(stores) as miss:
        assert not validate_code(svc, "acme", "NO-SUCH-CODE", moment(), device)

    print(f"\nDynamoDB requests per valid validate: {valid.total / 50:.3f}; per miss: {miss.total}")
    assert dict(valid.calls) == {"GetItem": 50}
    assert dict(miss.calls) == {"GetItem": 1, "UpdateItem": 1}


def test_a_caller_over_the_miss_limit_costs_no_request(stores: Stores) -> None:
    from promo.domain.errors import TooManyAttempts
    from promo.services.validation import validate_code

    svc = stores.services()
    device = "synctv-device:urn:synctv:devices:web:11223344"
    at = moment()  # one instant: all in one window
    for attempt in range(stores.settings.validate_miss_limit):
        assert not validate_code(svc, "acme", f"GUESS-{attempt}", at, device)
    with pytest.raises(TooManyAttempts):
        validate_code(svc, "acme", "GUESS-OVER", at, device)

    with RequestCounter(stores) as counter, pytest.raises(TooManyAttempts):
        validate_code(svc, "acme", "GUESS-AGAIN", at, device)

    assert counter.total == 0
