"""CodeStore behaviour, one guarantee per test, on a moto table built from template.yaml."""

from datetime import timedelta
from typing import Any

import pytest

from promo.domain import clock
from promo.domain.errors import (
    CodeNotFound,
    CodesNotFound,
    DuplicateValues,
    NoCodeAvailable,
    NotAvailableForIssue,
    TransitionRefused,
)
from promo.domain.models import (
    ActivityState,
    Code,
    CodeState,
    Issuance,
    NewCode,
    PointOfContact,
    Pool,
    Receipt,
    Recipient,
    Window,
)
from promo.store.codes.bulk_staging import BulkAdds
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.tables import Stores


@pytest.fixture
def stores(moto_stores: Stores) -> Stores:
    moto_stores.catalog.put_tenant(tenant("acme"))
    moto_stores.catalog.put_tenant(tenant("globex"))
    return moto_stores


def add(
    stores: Stores,
    count: int,
    tenant_id: str = "acme",
    prefix: str = "CODE",
    **pool_options: Any,
) -> tuple[Pool, list[Code]]:
    the_pool = pool(tenant_id, **pool_options)
    stores.catalog.put_pool(the_pool)
    codes = stores.codes.add(
        tenant_id, {the_pool.pool_id: the_pool}, new_codes(the_pool.pool_id, count, prefix), ACTOR
    )
    return the_pool, codes


def test_given_added_codes_when_looked_up_by_value_uuid_or_number_then_each_is_found(
    stores: Stores,
) -> None:
    _, codes = add(stores, 3)

    for code in codes:
        assert stores.codes.get("acme", code.value) == code
        assert stores.codes.get_by_uuid("acme", code.uuid) == code
        assert stores.codes.get_by_number("acme", code.number) == code
    assert len({code.number for code in codes}) == 3
    assert all(
        code.state is CodeState.AVAILABLE and code.activity is ActivityState.ACTIVE
        for code in codes
    )
    assert all(code.audit.created_by == ACTOR for code in codes)


def test_given_two_adds_when_numbering_then_integer_ids_never_collide(stores: Stores) -> None:
    _, first = add(stores, 5, prefix="A")
    _, second = add(stores, 5, prefix="B")

    assert len({code.number for code in first + second}) == 10
    assert stores.codes.created_count("acme") == 10


def test_given_a_value_repeated_in_one_request_when_adding_then_nothing_is_written(
    stores: Stores,
) -> None:
    the_pool = pool()
    stores.catalog.put_pool(the_pool)
    batch = [NewCode("spring", "SAME"), NewCode("spring", "OTHER"), NewCode("spring", "SAME")]

    with pytest.raises(DuplicateValues) as refused:
        stores.codes.add("acme", {"spring": the_pool}, batch, ACTOR)

    assert refused.value.values == ["SAME"]
    assert stores.codes.get("acme", "OTHER") is None


@pytest.mark.parametrize("size", [10, 180], ids=["one transaction", "staged batch"])
def test_given_existing_values_when_adding_a_batch_then_each_conflict_is_named_and_nothing_written(
    stores: Stores, size: int
) -> None:
    the_pool, existing = add(stores, 3, prefix="CODE")
    batch = new_codes("spring", size, prefix="NEW") + [
        NewCode("spring", code.value) for code in existing
    ]

    with pytest.raises(DuplicateValues) as refused:
        stores.codes.add("acme", {"spring": the_pool}, batch, ACTOR)

    assert refused.value.values == sorted(code.value for code in existing)
    assert all(stores.codes.get("acme", code.value) is None for code in batch[:size])
    assert {code.value for _, code in stores.codes.list("acme", ["spring"])} == {
        c.value for c in existing
    }


@pytest.mark.parametrize("size", [10, 180], ids=["one transaction", "staged batch"])
def test_given_an_add_sent_again_when_refused_then_it_burns_no_ids(
    stores: Stores, size: int
) -> None:
    the_pool, codes = add(stores, size)
    before = stores.codes.created_count("acme")

    with pytest.raises(DuplicateValues):  # nothing of it was written
        stores.codes.add(
            "acme", {"spring": the_pool}, [NewCode("spring", c.value) for c in codes], ACTOR
        )

    assert stores.codes.created_count("acme") == before
    (next_code,) = stores.codes.add(
        "acme", {"spring": the_pool}, [NewCode("spring", "NEXT")], ACTOR
    )
    assert next_code.number == before + 1


def test_given_another_add_took_ids_meanwhile_when_refused_then_its_ids_stay_a_gap(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_pool, codes = add(stores, 3)
    real_write = BulkAdds.write_codes

    def another_add_first(self: BulkAdds, *args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(BulkAdds, "write_codes", real_write)
        stores.codes.add("acme", {"spring": the_pool}, [NewCode("spring", "OTHER")], ACTOR)
        real_write(self, *args, **kwargs)

    monkeypatch.setattr(BulkAdds, "write_codes", another_add_first)
    with pytest.raises(DuplicateValues):
        stores.codes.add("acme", {"spring": the_pool}, [NewCode("spring", codes[0].value)], ACTOR)

    other = stores.codes.get("acme", "OTHER")
    assert other is not None
    assert other.number == 5  # after the refused add's id 4, which stays unused
    assert stores.codes.created_count("acme") == 5


def test_given_a_staged_add_refused_after_some_stages_landed_then_its_ids_stay_a_gap(
    stores: Stores,
) -> None:
    """Stages that landed were written, then rolled back: their ids are not handed out again."""
    the_pool, codes = add(stores, 3)
    batch = [*new_codes("spring", 180, prefix="NEW"), NewCode("spring", codes[0].value)]

    with pytest.raises(DuplicateValues):
        stores.codes.add("acme", {"spring": the_pool}, batch, ACTOR)

    assert stores.codes.created_count("acme") == 3 + len(batch)


def test_given_a_staged_batch_when_it_commits_then_every_code_is_visible_and_claimable(
    stores: Stores,
) -> None:
    the_pool, codes = add(stores, 120)

    assert len(codes) == 120
    claimed = {stores.codes.claim(the_pool, Issuance(moment(), ACTOR)).value for _ in range(120)}
    assert claimed == {code.value for code in codes}


def test_values_are_unique_per_tenant_not_globally(stores: Stores) -> None:
    add(stores, 2, tenant_id="acme")
    _, other = add(stores, 2, tenant_id="globex")

    assert [code.tenant_id for code in other] == ["globex", "globex"]


def test_given_another_tenants_code_when_looked_up_then_it_is_not_found(stores: Stores) -> None:
    _, codes = add(stores, 1, tenant_id="acme")
    code = codes[0]

    assert stores.codes.get("globex", code.value) is None
    assert stores.codes.get_by_uuid("globex", code.uuid) is None
    assert stores.codes.get_by_number("globex", code.number) is None
    with pytest.raises(CodeNotFound):
        stores.codes.issue("globex", code.value, Issuance(moment(), ACTOR))
    with pytest.raises(CodesNotFound):
        stores.codes.delete("globex", [code.uuid], ACTOR)
    assert stores.codes.get("acme", code.value) == code


def test_given_a_pool_when_claiming_then_each_code_is_issued_once_and_then_none_is_available(
    stores: Stores,
) -> None:
    the_pool, codes = add(stores, 12, shard_count=3)
    recipient = Recipient("maestra.webSiteUserId", "42")
    contact = PointOfContact("shop-web", "Web shop")

    issued = [
        stores.codes.claim(the_pool, Issuance(moment(), ACTOR, recipient, contact))
        for _ in range(12)
    ]

    assert sorted(code.value for code in issued) == sorted(code.value for code in codes)
    assert all(code.state is CodeState.ISSUED and code.issued_to == recipient for code in issued)
    assert all(code.issued_point_of_contact == contact for code in issued)
    with pytest.raises(NoCodeAvailable):
        stores.codes.claim(the_pool, Issuance(moment(), ACTOR))


@pytest.mark.parametrize("size", [3, 60], ids=["one transaction", "staged batch"])
@pytest.mark.parametrize("with_receipt", [False, True], ids=["plain", "with a receipt"])
def test_a_claim_answers_exactly_the_code_a_read_finds_afterwards(
    stores: Stores, size: int, with_receipt: bool
) -> None:
    """A claim assembles its answer from the index entry and what it wrote, without a read."""
    the_pool = pool(shard_count=2)
    stores.catalog.put_pool(the_pool)
    window = Window(moment() - timedelta(days=1), moment() + timedelta(days=30))
    stores.codes.add(
        "acme", {"spring": the_pool}, new_codes("spring", size, "EXACT", window), ACTOR
    )
    recipient = Recipient("maestra.webSiteUserId", "7")
    contact = PointOfContact("shop-web", "Web shop")

    for index in range(3):
        receipt = Receipt("maestra", f"tx-{index}", "fingerprint") if with_receipt else None
        claimed = stores.codes.claim(
            the_pool, Issuance(moment(), ACTOR, recipient, contact, receipt)
        )

        assert claimed == stores.codes.get("acme", claimed.value)
        assert (claimed.validity, claimed.issued_to) == (window, recipient)


def test_given_a_stale_candidate_page_when_claiming_then_codes_taken_elsewhere_are_skipped(
    stores: Stores,
) -> None:
    the_pool, _ = add(stores, 6, shard_count=1)
    first = stores.codes.claim(
        the_pool, Issuance(moment(), ACTOR)
    )  # caches the other five as candidates
    other_function = stores.fresh()

    taken_elsewhere = {
        other_function.codes.claim(the_pool, Issuance(moment(), ACTOR)).value for _ in range(3)
    }
    mine = {stores.codes.claim(the_pool, Issuance(moment(), ACTOR)).value for _ in range(2)}

    assert len({first.value} | taken_elsewhere | mine) == 6
    with pytest.raises(NoCodeAvailable):
        stores.codes.claim(the_pool, Issuance(moment(), ACTOR))


def test_given_expired_or_future_codes_when_claiming_at_a_time_then_only_valid_ones_are_issued(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_pool = pool()
    stores.catalog.put_pool(the_pool)
    now = moment()
    batch = [
        NewCode("spring", "PAST", Window(now - timedelta(days=10), now - timedelta(days=5))),
        NewCode("spring", "NOW", Window(now - timedelta(days=1), now + timedelta(days=1))),
        NewCode("spring", "LATER", Window(now + timedelta(days=5), now + timedelta(days=10))),
    ]
    with monkeypatch.context() as earlier:  # the codes exist from ten days ago
        earlier.setattr(clock, "now", lambda: now - timedelta(days=10))
        stores.codes.add("acme", {"spring": the_pool}, batch, ACTOR)

    assert stores.codes.claim(the_pool, Issuance(now, ACTOR)).value == "NOW"
    with pytest.raises(NoCodeAvailable):
        stores.codes.claim(the_pool, Issuance(now, ACTOR))
    backdated = stores.codes.claim(the_pool, Issuance(now - timedelta(days=7), ACTOR))
    assert backdated.value == "PAST"
    assert backdated.issued_at == now - timedelta(days=7)


def test_given_a_code_when_issued_by_value_twice_then_the_second_is_refused(stores: Stores) -> None:
    _, codes = add(stores, 1)

    issued = stores.codes.issue("acme", codes[0].value, Issuance(moment(), ACTOR))

    assert issued.state is CodeState.ISSUED
    with pytest.raises(NotAvailableForIssue):
        stores.codes.issue("acme", codes[0].value, Issuance(moment(), ACTOR))
    with pytest.raises(CodeNotFound):
        stores.codes.issue("acme", "NO-SUCH-CODE", Issuance(moment(), ACTOR))


def test_given_an_issued_code_when_redeemed_then_it_is_used_once_with_who_and_where(
    stores: Stores,
) -> None:
    _, codes = add(stores, 1)
    value = codes[0].value
    stores.codes.issue("acme", value, Issuance(moment(), ACTOR))

    used = stores.codes.redeem(
        "acme",
        value,
        Issuance(
            moment(),
            ACTOR,
            recipient=Recipient("maestra.webSiteUserId", "2365"),
            point_of_contact=PointOfContact("till-1"),
        ),
    )

    assert used.state is CodeState.USED
    assert used.used_by == "2365"
    assert used.used_point_of_contact == PointOfContact("till-1")
    assert used.used_at is not None
    with pytest.raises(TransitionRefused):
        stores.codes.redeem("acme", value, Issuance(moment(), ACTOR))


def test_given_a_blocked_code_then_it_can_be_neither_issued_nor_redeemed(stores: Stores) -> None:
    _, codes = add(stores, 1)
    blocked = stores.codes.block("acme", codes[0].value, moment(), ACTOR)

    assert blocked.state is CodeState.BLOCKED
    assert blocked.blocked_at is not None
    with pytest.raises(NotAvailableForIssue):
        stores.codes.issue("acme", codes[0].value, Issuance(moment(), ACTOR))
    with pytest.raises(TransitionRefused):
        stores.codes.redeem("acme", codes[0].value, Issuance(moment(), ACTOR))


def test_given_deleted_codes_then_they_are_kept_but_never_issued_or_claimed(stores: Stores) -> None:
    the_pool, codes = add(stores, 2)
    stores.codes.delete("acme", [codes[0].uuid], ACTOR)

    deleted = stores.codes.get("acme", codes[0].value)
    assert deleted is not None
    assert deleted.is_deleted
    assert deleted.audit.updated_at >= codes[0].audit.updated_at
    with pytest.raises(NotAvailableForIssue):
        stores.codes.issue("acme", codes[0].value, Issuance(moment(), ACTOR))
    assert stores.codes.claim(the_pool, Issuance(moment(), ACTOR)).value == codes[1].value
    with pytest.raises(NoCodeAvailable):
        stores.codes.claim(the_pool, Issuance(moment(), ACTOR))


def test_given_an_unknown_id_among_deletes_then_all_unknown_are_named_and_nothing_deleted(
    stores: Stores,
) -> None:
    from uuid import uuid4

    _, codes = add(stores, 2)
    strangers = [uuid4(), uuid4()]

    with pytest.raises(CodesNotFound) as refused:
        stores.codes.delete("acme", [codes[0].uuid, *strangers], ACTOR)

    assert refused.value.ids == sorted(str(s) for s in strangers)
    assert not stores.codes.get("acme", codes[0].value).is_deleted  # type: ignore[union-attr]


def test_listing_is_newest_first_and_a_cursor_resumes_without_gaps_or_repeats(
    stores: Stores,
) -> None:
    add(stores, 7, prefix="A")
    add(stores, 5, prefix="B")
    everything = list(stores.codes.list("acme", ["spring"]))

    positions = [position for position, _ in everything]
    assert positions == sorted(positions, reverse=True)
    first_page = everything[:4]
    resumed = list(stores.codes.list("acme", ["spring"], before=first_page[-1][0]))
    assert [c.value for _, c in first_page + resumed] == [c.value for _, c in everything]
    assert {c.value for _, c in everything} == {f"A{i:05d}" for i in range(7)} | {
        f"B{i:05d}" for i in range(5)
    }


def test_listing_merges_pools_and_shows_deleted_codes(stores: Stores) -> None:
    _, spring = add(stores, 3, prefix="S")
    _, summer = add(stores, 3, prefix="U", pool_id="summer", offer_id=3)
    stores.codes.delete("acme", [summer[0].uuid], ACTOR)

    listed = {code.value: code for _, code in stores.codes.list("acme", ["spring", "summer"])}

    assert set(listed) == {c.value for c in spring + summer}
    assert listed[summer[0].value].activity is ActivityState.DELETED


def test_existing_values_reports_only_the_tenants_own(stores: Stores) -> None:
    add(stores, 2, tenant_id="acme")

    assert stores.codes.existing_values("acme", ["CODE00000", "CODE00001", "NOPE"]) == {
        "CODE00000",
        "CODE00001",
    }
    assert stores.codes.existing_values("globex", ["CODE00000"]) == set()


def test_a_backdated_claim_never_issues_a_code_created_after_its_effective_time(
    stores: Stores,
) -> None:
    the_pool = pool()
    stores.catalog.put_pool(the_pool)
    stores.codes.add("acme", {"spring": the_pool}, [NewCode("spring", "NEWER")], ACTOR)

    with pytest.raises(NoCodeAvailable):
        stores.codes.claim(the_pool, Issuance(moment() - timedelta(days=2), ACTOR))
    assert stores.codes.claim(the_pool, Issuance(moment(), ACTOR)).value == "NEWER"


def test_a_backdated_create_and_issue_is_created_at_its_effective_time(stores: Stores) -> None:
    the_pool = pool()
    stores.catalog.put_pool(the_pool)
    at = moment() - timedelta(days=2)

    code = stores.codes.create_issued(the_pool, NewCode("spring", "BACK"), Issuance(at, ACTOR))

    assert code.audit.created_at == code.issued_at == at
