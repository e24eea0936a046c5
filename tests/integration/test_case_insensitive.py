"""Case-insensitive tenants (issue 16, item 5) against DynamoDB Local, with separate processes
where concurrency is claimed.

A tenant with ``case_sensitive: false`` keys new codes by their folded value, so uniqueness is
the same conditional write as ever; codes it held before the switch get a pointer at their
folded key, and every lookup follows it (docs/values.md, Case-insensitive tenants).
"""

import multiprocessing
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any

import pytest

from promo.domain.errors import (
    CaseRuleRefused,
    ConcurrentChange,
    DuplicateValues,
    StoreUnavailable,
)
from promo.domain.models import CodeState, Issuance, NewCode, Receipt, Recipient, StepKind, Window
from promo.services.issuing import Step, perform_step
from promo.services.tenants import SwitchWait, put_tenant
from tests.integration.test_request_costs import RequestCounter
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.processes import in_processes, process_client, thread_stores
from tests.support.tables import Stores
from tools.dynamodb_local import DynamoDBLocal

VARIANTS = [
    "spring-7kq3",
    "SPRING-7KQ3",
    "Spring-7kq3",
    "sPRING-7KQ3",
    "SPRING-7kq3",
    "spring-7KQ3",
    "SpRiNg-7kQ3",
    "sPrInG-7Kq3",
]
CUSTOMER = Recipient("maestra.webSiteUserId", "customer-1")


@pytest.fixture
def stores(local_stores: Stores) -> Stores:
    local_stores.catalog.put_tenant(tenant("acme"))
    local_stores.catalog.put_pool(pool())
    return local_stores


def switch(
    stores: Stores, case_sensitive: bool, meanwhile: Callable[[], None] = lambda: None
) -> None:
    """Switch the tenant's rule; ``meanwhile`` runs where the switch waits for every function
    to learn of it (``SwitchWait``)."""
    put_tenant(
        stores.catalog,
        stores.codes,
        tenant("acme", case_sensitive),
        SwitchWait(0, lambda _: meanwhile()),
    )


def pointers(stores: Stores) -> list[dict[str, Any]]:
    items = stores.client.scan(TableName=stores.table_name)["Items"]
    return [item for item in items if "points_to" in item]


def _add_in_a_process(endpoint: str, table_name: str, value: str, create: bool) -> Counter[str]:
    """One variant, added (or created and issued, as Maestra does) by a process of its own,
    which reads the tenant's setting as a function would."""
    mine = thread_stores(process_client(endpoint, 1), table_name)
    new = NewCode("spring", value)
    try:
        if create:
            mine.codes.create_issued(pool(), new, Issuance(moment(), ACTOR, CUSTOMER))
        else:
            mine.codes.add("acme", {"spring": pool()}, [new], ACTOR)
    except DuplicateValues:
        return Counter(duplicate=1)
    except (ConcurrentChange, StoreUnavailable):
        return Counter(unavailable=1)
    return Counter(added=1)


def test_given_an_insensitive_tenant_when_8_processes_add_case_variants_of_one_value_then_exactly_one_is_added(
    stores: Stores, dynamodb_local: DynamoDBLocal
) -> None:
    switch(stores, case_sensitive=False)
    arguments = [
        (dynamodb_local.endpoint, stores.table_name, value, index % 2 == 1)
        for index, value in enumerate(VARIANTS)
    ]

    outcomes = in_processes(_add_in_a_process, arguments)

    assert outcomes["added"] == 1
    assert outcomes["added"] + outcomes["duplicate"] + outcomes["unavailable"] == len(VARIANTS)
    held = [code.value for _, code in stores.codes.list("acme", ["spring"])]
    assert len(held) == 1
    assert held[0] in VARIANTS
    assert all(stores.codes.get("acme", variant).value == held[0] for variant in VARIANTS)  # type: ignore[union-attr]


def test_given_a_sensitive_tenant_then_case_variants_are_different_codes(stores: Stores) -> None:
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "SPRING-7KQ3")], ACTOR)
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "spring-7kq3")], ACTOR)

    assert stores.codes.get("acme", "Spring-7kq3") is None
    assert stores.codes.get("acme", "spring-7kq3").value == "spring-7kq3"  # type: ignore[union-attr]


def test_given_values_that_collide_when_folded_then_the_switch_is_refused_naming_them(
    stores: Stores,
) -> None:
    values = ["SPRING-7KQ3", "spring-7kq3", "STRASSE", "straße", "UNIQUE-1"]
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", v) for v in values], ACTOR)

    with pytest.raises(CaseRuleRefused) as refused:
        switch(stores, case_sensitive=False)

    assert refused.value.values == sorted(["SPRING-7KQ3", "spring-7kq3", "STRASSE", "straße"])
    assert stores.catalog.get_tenant("acme").case_sensitive  # type: ignore[union-attr]
    assert pointers(stores) == []
    assert stores.codes.get("acme", "unique-1") is None


def test_given_a_value_held_at_a_folded_key_when_pointers_are_written_then_the_collision_refuses_and_leaves_none(
    stores: Stores,
) -> None:
    """The pointers' own condition: a code added between the switch's listing and its writes
    (or a stale pointer) at a folded key refuses the switch, and what it wrote is taken back."""
    values = ["ALPHA-1", "BETA-1", "beta-1"]
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", v) for v in values], ACTOR)

    with pytest.raises(CaseRuleRefused) as refused:
        stores.codes.point_folded("acme", ["ALPHA-1", "BETA-1"])

    assert refused.value.values == ["BETA-1", "beta-1"]
    assert pointers(stores) == []


def test_given_mixed_case_codes_when_the_tenant_switches_then_any_spelling_reaches_them(
    stores: Stores,
) -> None:
    held = ["SPRING-7KQ3", "Welcome-Back", "lower-1", "CAFÉ-1"]
    added = stores.codes.add(
        "acme", {"spring": pool()}, [NewCode("spring", v) for v in held], ACTOR
    )

    switch(stores, case_sensitive=False)

    assert sorted(p["points_to"]["S"] for p in pointers(stores)) == [
        "CAFÉ-1",
        "SPRING-7KQ3",
        "Welcome-Back",
    ]
    assert stores.codes.get("acme", "spring-7kq3").value == "SPRING-7KQ3"  # type: ignore[union-attr]
    assert stores.codes.get("acme", "WELCOME-BACK").value == "Welcome-Back"  # type: ignore[union-attr]
    assert stores.codes.get("acme", "LOWER-1").value == "lower-1"  # type: ignore[union-attr]
    assert stores.codes.get("acme", "café-1").value == "CAFÉ-1"  # type: ignore[union-attr]
    by_id = stores.codes.get_many_by_uuid("acme", [code.uuid for code in added])
    assert sorted(code.value for code in by_id.values()) == sorted(held)
    with pytest.raises(DuplicateValues):
        stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "spring-7KQ3")], ACTOR)

    issued = stores.codes.issue("acme", "spring-7kq3", Issuance(moment(), ACTOR, CUSTOMER))
    redeemed = stores.codes.redeem("acme", "Spring-7Kq3", Issuance(moment(), ACTOR, CUSTOMER))
    given_back = stores.codes.roll_back_redemption(
        "acme", "sPRING-7kq3", Issuance(moment(), ACTOR), "order cancelled"
    )

    assert (issued.value, issued.state) == ("SPRING-7KQ3", CodeState.ISSUED)
    assert (redeemed.value, redeemed.state) == ("SPRING-7KQ3", CodeState.USED)
    assert (given_back.value, given_back.state) == ("SPRING-7KQ3", CodeState.ISSUED)


def test_given_an_insensitive_tenant_then_a_new_code_is_keyed_by_its_fold_and_shown_as_added(
    stores: Stores,
) -> None:
    switch(stores, case_sensitive=False)
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "Autumn-Sale")], ACTOR)
    svc = stores.services()
    step = Step(
        StepKind.BY_VALUE_CREATE,
        "acme",
        "maestra",
        "AUTUMN-SALE",
        "spring-ext",
        Window(),
        Issuance(moment(), ACTOR, CUSTOMER, receipt=Receipt("maestra", "tx-1", "fingerprint")),
    )

    first = perform_step(svc, step)
    replayed = perform_step(svc, step)

    assert first.refusal is None
    assert replayed.refusal is None
    assert first.code.value == replayed.code.value == "Autumn-Sale"  # type: ignore[union-attr]
    assert [code.value for _, code in stores.codes.list("acme", ["spring"])] == ["Autumn-Sale"]
    item = stores.client.get_item(
        TableName=stores.table_name, Key={"pk": {"S": "T#acme#V#autumn-sale"}, "sk": {"S": "CODE"}}
    )["Item"]
    assert item["value"]["S"] == "Autumn-Sale"


def test_given_codes_differing_from_their_fold_then_switching_back_to_sensitive_is_refused(
    stores: Stores,
) -> None:
    switch(stores, case_sensitive=False)
    stores.codes.add("acme", {"spring": pool()}, new_codes("spring", 2, "Mixed"), ACTOR)

    with pytest.raises(CaseRuleRefused) as refused:
        switch(stores, case_sensitive=True)

    assert refused.value.values == ["Mixed00000", "Mixed00001"]
    assert not stores.catalog.get_tenant("acme").case_sensitive  # type: ignore[union-attr]


def test_given_only_values_that_are_their_own_fold_then_the_tenant_can_switch_back(
    stores: Stores,
) -> None:
    switch(stores, case_sensitive=False)
    stores.codes.add("acme", {"spring": pool()}, new_codes("spring", 2, "lower-"), ACTOR)

    switch(stores, case_sensitive=True)

    assert stores.catalog.get_tenant("acme").case_sensitive  # type: ignore[union-attr]
    assert stores.codes.get("acme", "lower-00001") is not None
    assert stores.codes.get("acme", "LOWER-00001") is None


def test_an_insensitive_lookup_costs_one_read_and_one_more_for_a_code_held_before_the_switch(
    stores: Stores,
) -> None:
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "BEFORE-1")], ACTOR)
    switch(stores, case_sensitive=False)
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "AFTER-1")], ACTOR)

    with RequestCounter(stores) as after:
        assert stores.codes.get("acme", "after-1") is not None
        assert stores.codes.get("acme", "nope") is None
    with RequestCounter(stores) as before:
        assert stores.codes.get("acme", "before-1") is not None

    assert dict(after.calls) == {"GetItem": 2}
    assert dict(before.calls) == {"GetItem": 2}


def test_given_concurrent_issues_by_every_spelling_then_the_code_is_issued_once(
    stores: Stores,
) -> None:
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "SPRING-7KQ3")], ACTOR)
    switch(stores, case_sensitive=False)

    def issue(value: str) -> str:
        mine = stores.fresh()
        try:
            mine.codes.issue("acme", value, Issuance(moment(), ACTOR, CUSTOMER))
        except Exception as refused:
            return type(refused).__name__
        return "issued"

    with ThreadPoolExecutor(len(VARIANTS)) as executor:
        outcomes = Counter(executor.map(issue, VARIANTS))

    assert outcomes == Counter({"issued": 1, "NotAvailableForIssue": len(VARIANTS) - 1})


def test_codes_a_function_still_reading_the_tenant_as_sensitive_adds_during_the_switch_get_pointers(
    stores: Stores,
) -> None:
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "SPRING-7KQ3")], ACTOR)
    stale = stores.fresh()
    assert stale.catalog.case_sensitive("acme")  # read before the switch, cached for the TTL

    def meanwhile() -> None:
        stale.codes.add("acme", {"spring": pool()}, [NewCode("spring", "Late-Code-1")], ACTOR)

    switch(stores, case_sensitive=False, meanwhile=meanwhile)

    assert not stores.fresh().catalog.case_sensitive("acme")
    assert stores.codes.get("acme", "late-code-1").value == "Late-Code-1"  # type: ignore[union-attr]
    assert stores.codes.get("acme", "spring-7kq3").value == "SPRING-7KQ3"  # type: ignore[union-attr]


def test_a_collision_a_stale_function_adds_during_the_switch_gives_the_switch_up_leaving_nothing(
    stores: Stores,
) -> None:
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "SPRING-7KQ3")], ACTOR)
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "Mixed-Before")], ACTOR)
    stale = stores.fresh()
    assert stale.catalog.case_sensitive("acme")

    def meanwhile() -> None:
        late = [NewCode("spring", "Spring-7kq3"), NewCode("spring", "Late-Code-2")]
        stale.codes.add("acme", {"spring": pool()}, late, ACTOR)

    with pytest.raises(CaseRuleRefused) as named:
        switch(stores, case_sensitive=False, meanwhile=meanwhile)

    assert named.value.values == ["SPRING-7KQ3", "Spring-7kq3"]
    after = stores.fresh()
    assert after.catalog.get_tenant("acme") == tenant("acme")  # the rule, and no switch mark
    assert pointers(stores) == []  # "Mixed-Before" had one during the switch
    assert after.codes.get("acme", "mixed-before") is None
    assert after.codes.get("acme", "Spring-7kq3").value == "Spring-7kq3"  # type: ignore[union-attr]
    after.codes.add("acme", {"spring": pool()}, [NewCode("spring", "After-1")], ACTOR)


def test_a_function_that_knows_of_a_switch_adds_nothing_until_it_is_done(stores: Stores) -> None:
    refusals: list[str] = []

    def meanwhile() -> None:
        aware = stores.fresh()  # reads the tenant after the switch marked it
        for add in (
            lambda: aware.codes.add("acme", {"spring": pool()}, [NewCode("spring", "X-1")], ACTOR),
            lambda: aware.codes.create_issued(
                pool(), NewCode("spring", "X-2"), Issuance(moment(), ACTOR, CUSTOMER)
            ),
        ):
            with pytest.raises(ConcurrentChange) as paused:
                add()
            refusals.append(str(paused.value))
        assert aware.codes.get("acme", "X-1") is None  # the old rule still reads

    switch(stores, case_sensitive=False, meanwhile=meanwhile)

    assert len(refusals) == 2
    assert all("case rule is being switched" in refusal for refusal in refusals)
    assert [code.value for _, code in stores.codes.list("acme", ["spring"])] == []
    stores.fresh().codes.add("acme", {"spring": pool()}, [NewCode("spring", "X-1")], ACTOR)


def test_a_second_switch_is_refused_while_one_is_under_way(stores: Stores) -> None:
    def meanwhile() -> None:
        with pytest.raises(ConcurrentChange, match="Another switch"):
            switch(stores, case_sensitive=False)

    switch(stores, case_sensitive=False, meanwhile=meanwhile)

    assert not stores.fresh().catalog.case_sensitive("acme")


def test_an_abandoned_switch_stops_pausing_adds_when_its_mark_lapses(stores: Stores) -> None:
    current = stores.catalog.get_tenant("acme")
    assert current is not None
    stores.catalog.begin_case_switch(current, moment(-1 / 86400))  # its process died long ago

    stores.fresh().codes.add("acme", {"spring": pool()}, [NewCode("spring", "Go-1")], ACTOR)
    switch(stores, case_sensitive=False)

    assert stores.fresh().codes.get("acme", "GO-1").value == "Go-1"  # type: ignore[union-attr]


def _stale_then_aware_add(
    endpoint: str, table_name: str, variant: str, ready: Any, go: Any
) -> Counter[str]:
    """A function that read the tenant before a switch adds ``variant`` while the switch waits
    for it; then a fresh function in the same process, which reads the switch's mark, tries."""
    stale = thread_stores(process_client(endpoint, 1), table_name)
    assert stale.catalog.case_sensitive("acme")
    ready.put(variant)
    assert go.wait(60)
    outcomes: Counter[str] = Counter()
    try:
        stale.codes.add("acme", {"spring": pool()}, [NewCode("spring", variant)], ACTOR)
        outcomes["stale added"] += 1
    except DuplicateValues:
        outcomes["stale duplicate"] += 1
    try:
        stale.fresh().codes.add(
            "acme", {"spring": pool()}, [NewCode("spring", f"{variant}-")], ACTOR
        )
        outcomes["aware added"] += 1
    except ConcurrentChange:
        outcomes["aware paused"] += 1
    return outcomes


def test_given_stale_processes_adding_case_variants_during_a_switch_then_it_is_given_up_cleanly(
    stores: Stores, dynamodb_local: DynamoDBLocal
) -> None:
    """Four separate processes, each a function that read the tenant as sensitive just before
    the switch: their variants of a held value land while the switch waits (legal under the
    rule they read). The switch's last listing finds them, so the tenant stays sensitive with
    nothing of the switch left; and a function that reads the tenant meanwhile adds nothing."""
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "SPRING-7KQ3")], ACTOR)
    variants = VARIANTS[1:5]  # not its fold: the switch's pointer holds that key already
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(4, mp_context=context) as processes:
        ready, go = manager.Queue(), manager.Event()
        futures = [
            processes.submit(
                _stale_then_aware_add, dynamodb_local.endpoint, stores.table_name, v, ready, go
            )
            for v in variants
        ]
        assert sorted(ready.get(timeout=60) for _ in variants) == sorted(variants)

        def meanwhile() -> None:
            go.set()
            wait(futures)

        with pytest.raises(CaseRuleRefused) as named:
            switch(stores, case_sensitive=False, meanwhile=meanwhile)
        outcomes = sum((future.result() for future in futures), Counter[str]())

    added = [v for v in variants if v != "SPRING-7KQ3"]
    assert outcomes == Counter({"stale added": len(added), "stale duplicate": 1, "aware paused": 4})
    assert named.value.values == sorted(["SPRING-7KQ3", *added])
    assert stores.fresh().catalog.get_tenant("acme") == tenant("acme")
    assert pointers(stores) == []
    assert sorted(code.value for _, code in stores.codes.list("acme", ["spring"])) == sorted(
        ["SPRING-7KQ3", *added]
    )


def test_given_a_code_held_before_the_switch_then_any_spelling_holds_releases_and_redeems_it(
    stores: Stores,
) -> None:
    stores.codes.add("acme", {"spring": pool()}, [NewCode("spring", "Hold-Mixed")], ACTOR)
    switch(stores, case_sensitive=False)
    until = moment(1)

    held = stores.codes.reserve("acme", "hold-mixed", Issuance(moment(), ACTOR, CUSTOMER), until)
    released = stores.codes.release("acme", "HOLD-MIXED", Issuance(moment(), ACTOR, CUSTOMER))
    stores.codes.reserve("acme", "HOLD-mixed", Issuance(moment(), ACTOR, CUSTOMER), until)
    redeemed = stores.codes.redeem("acme", "hOLD-MIXED", Issuance(moment(), ACTOR, CUSTOMER))

    assert (held.value, len(held.holds), held.uses_left) == ("Hold-Mixed", 1, 0)
    assert (released.value, released.holds, released.uses_left) == ("Hold-Mixed", (), 1)
    assert (redeemed.value, redeemed.holds, redeemed.is_spent) == ("Hold-Mixed", (), True)
