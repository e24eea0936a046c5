"""Domain events (issue 17, item 2): each kind produced by its operation, through the real
consumer (functions/change_stream/app.py) over DynamoDB Local's stream, valid against its JSON
Schema in docs/events.md, and never carrying a secret."""

import json
import re
from typing import Any

import pytest

from promo.domain import clock
from promo.domain.models import Issuance, NewCode, Recipient
from promo.event_bus import BusEvent
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.event_schemas import problems
from tests.support.stream import Stream
from tests.support.tables import Stores

SINGLE = pool("acme", "spring", low_watermark=2)
MULTI = pool("acme", "party", offer_id=3, redemptions_per_code=3)


@pytest.fixture
def stores(streamed_stores: Stores) -> Stores:
    streamed_stores.catalog.put_tenant(tenant("acme"))
    streamed_stores.catalog.put_pool(SINGLE)
    streamed_stores.catalog.put_pool(MULTI)
    return streamed_stores


@pytest.fixture
def stream(stores: Stores) -> Stream:
    return Stream(stores)


def add(stores: Stores, codes: list[NewCode], actor: str = ACTOR) -> None:
    stores.codes.add("acme", {SINGLE.pool_id: SINGLE, MULTI.pool_id: MULTI}, codes, actor)


def assert_valid(event: BusEvent) -> None:
    assert problems(event.kind, event.detail) == [], event.detail
    envelope = event.envelope("us-east-1")
    assert problems("envelope", envelope) == [], envelope


def only(stream: Stream, kind: str) -> dict[str, Any]:
    (event,) = stream.of_kind(kind)
    assert_valid(event)
    return dict(event.detail)


def test_an_add_announces_each_code_added_with_its_ids_and_value(
    stores: Stores, stream: Stream
) -> None:
    add(stores, new_codes("spring", 3, "ADD"), actor="mews:front-desk")

    stream.settle()

    added = stream.of_kind("CodesAdded")
    assert len(added) == 3
    for event in added:
        assert_valid(event)
    details = sorted((e.detail for e in added), key=lambda d: d["codes"][0]["value"])
    first = details[0]
    code = stores.codes.get("acme", "ADD00000")
    assert code is not None
    assert first["codes"] == [{"id": str(code.uuid), "number": code.number, "value": "ADD00000"}]
    assert (first["tenant"], first["pool"], first["actor"]) == ("acme", "spring", "mews:front-desk")


def test_a_bulk_add_is_announced_when_it_commits_100_codes_to_an_event(
    stores: Stores, stream: Stream
) -> None:
    add(stores, new_codes("spring", 130, "BULK"))  # over 50: staged, then committed

    stream.settle()

    added = stream.of_kind("CodesAdded")
    assert [event.detail["count"] for event in added] == [100, 30]
    values = [code["value"] for event in added for code in event.detail["codes"]]
    assert sorted(values) == [f"BULK{i:05d}" for i in range(130)]
    assert len({event.detail["batch"] for event in added}) == 1
    for event in added:
        assert_valid(event)


def test_a_claim_is_announced_as_issued_to_its_recipient(stores: Stores, stream: Stream) -> None:
    add(stores, new_codes("spring", 5, "ISS"))
    claimed = stores.codes.claim(
        SINGLE, Issuance(moment(), "maestra:shop", Recipient("maestra.webSiteUserId", "42"))
    )

    stream.settle()

    issued = only(stream, "CodeIssued")
    assert issued["code"]["value"] == claimed.value
    assert issued["recipient"] == {"kind": "maestra.webSiteUserId", "id": "42"}
    assert issued["actor"] == "maestra:shop"


def test_each_redemption_of_a_multi_use_code_and_each_rollback_is_announced(
    stores: Stores, stream: Stream
) -> None:
    add(stores, [NewCode("party", "PARTY-1")])
    for customer in ("a", "b"):
        stores.codes.redeem(
            "acme", "PARTY-1", Issuance(moment(), "crm:till", Recipient("crm.contact", customer))
        )
    stores.codes.roll_back_redemption(
        "acme", "PARTY-1", Issuance(moment(), "admin:ops"), "order cancelled"
    )

    stream.settle()

    redeemed = stream.of_kind("CodeRedeemed")
    assert [event.detail["uses_left"] for event in redeemed] == [2, 1]
    assert [event.detail["redeemed_by"] for event in redeemed] == ["a", "b"]
    rolled_back = only(stream, "RedemptionRolledBack")
    assert (rolled_back["state"], rolled_back["uses_left"]) == ("USED", 2)
    assert (rolled_back["reason"], rolled_back["actor"]) == ("order cancelled", "admin:ops")
    for event in redeemed:
        assert_valid(event)


def test_a_rolled_back_single_use_code_is_issued_again_without_a_second_code_issued_event(
    stores: Stores, stream: Stream
) -> None:
    add(stores, [NewCode("spring", "ONCE-1")])
    stores.codes.issue("acme", "ONCE-1", Issuance(moment(), ACTOR))
    stores.codes.redeem("acme", "ONCE-1", Issuance(moment(), ACTOR))
    stores.codes.roll_back_redemption("acme", "ONCE-1", Issuance(moment(), ACTOR), "refund")

    stream.settle()

    code_events = [kind for kind in stream.kinds() if not kind.startswith("Pool")]
    assert code_events == ["CodesAdded", "CodeIssued", "CodeRedeemed", "RedemptionRolledBack"]
    assert only(stream, "RedemptionRolledBack")["state"] == "ISSUED"


def test_a_block_and_a_delete_are_announced(stores: Stores, stream: Stream) -> None:
    add(stores, [NewCode("spring", "BLOCK-1"), NewCode("spring", "DELETE-1")])
    stores.codes.block("acme", "BLOCK-1", moment(), "maestra:shop")
    doomed = stores.codes.get("acme", "DELETE-1")
    assert doomed is not None
    stores.codes.delete("acme", [doomed.uuid], "mews:front-desk")

    stream.settle()

    blocked, deleted = only(stream, "CodeBlocked"), only(stream, "CodeDeleted")
    assert (blocked["code"]["value"], blocked["actor"]) == ("BLOCK-1", "maestra:shop")
    assert (deleted["code"]["id"], deleted["actor"]) == (str(doomed.uuid), "mews:front-desk")


def test_a_pool_falling_to_its_watermark_then_to_empty_is_announced_once_each(
    stores: Stores, stream: Stream
) -> None:
    add(stores, new_codes("spring", 4, "LOW"))
    stream.settle()
    claim = Issuance(moment(), ACTOR)

    stores.codes.claim(SINGLE, claim)  # 3 left: above the watermark of 2
    stream.settle()
    assert stream.of_kind("PoolLow") == []
    stores.codes.claim(SINGLE, claim)  # 2 left: low
    stream.settle()
    stores.codes.claim(SINGLE, claim)  # 1 left: still low, not announced again
    stream.settle()
    low = only(stream, "PoolLow")
    assert (low["available"], low["low_watermark"]) == (2, 2)
    stores.codes.claim(SINGLE, claim)  # none left
    stream.settle()

    empty = only(stream, "PoolEmpty")
    assert (empty["pool"], empty["available"], empty["actor"]) == (
        "spring",
        0,
        "promo-codes:inventory",
    )


def test_a_new_pool_whose_bulk_add_is_still_staged_is_not_announced_empty(
    stores: Stores, stream: Stream
) -> None:
    add(stores, new_codes("spring", 60, "FIRST"))  # staged, then committed

    stream.settle(batch_size=10)  # the staged codes arrive in batches before the commit

    assert stream.kinds() == ["CodesAdded"]


def test_a_refilled_pool_is_announced_again_when_it_falls_again(
    stores: Stores, stream: Stream
) -> None:
    add(stores, new_codes("spring", 3, "REFILL-A"))
    stores.codes.claim(SINGLE, Issuance(moment(), ACTOR))
    stream.settle()
    add(stores, new_codes("spring", 5, "REFILL-B"))  # 7 available: above the watermark again
    stream.settle()
    for _ in range(5):
        stores.codes.claim(SINGLE, Issuance(moment(), ACTOR))
    stream.settle()

    assert [event.detail["available"] for event in stream.of_kind("PoolLow")] == [2, 2]
    assert len({event.id for event in stream.of_kind("PoolLow")}) == 2


def test_a_pool_emptied_in_one_batch_from_above_its_watermark_gets_both(
    stores: Stores, stream: Stream
) -> None:
    add(stores, new_codes("spring", 3, "BOTH"))
    stream.settle()
    for _ in range(3):
        stores.codes.claim(SINGLE, Issuance(moment(), ACTOR))

    stream.settle()

    assert stream.kinds()[-2:] == ["PoolLow", "PoolEmpty"]


def test_a_retried_batch_publishes_its_code_events_again_under_the_same_ids_and_no_pool_event(
    stores: Stores, stream: Stream
) -> None:
    add(stores, new_codes("spring", 3, "AGAIN"))
    stores.codes.claim(SINGLE, Issuance(moment(), ACTOR))  # 2 left: low
    records = stream.read()

    assert stream.invoke(records) == {"batchItemFailures": []}
    first = [event.id for event in stream.published]
    assert stream.invoke(records) == {"batchItemFailures": []}

    code_events = [event_id for event_id in first if ":Pool" not in event_id]
    assert first == [*code_events, "acme:spring:PoolLow:1"]
    assert [event.id for event in stream.published] == first + code_events


def test_a_batch_whose_events_cannot_be_published_is_delivered_again_from_the_first_unsent(
    stores: Stores, stream: Stream
) -> None:
    add(stores, [NewCode("spring", "FAIL-1")])
    stores.codes.issue("acme", "FAIL-1", Issuance(moment(), ACTOR))
    records = stream.read()
    refused = stream.services._replace(publish=_refuse_after(1, stream.published))
    stream.services = refused

    answer = stream.invoke(records)

    # The add's event went out; the issue's record is delivered again.
    assert [event.kind for event in stream.published] == ["CodesAdded"]
    assert answer == {
        "batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]
    }


def _refuse_after(count: int, sink: list[BusEvent]) -> Any:
    from promo.event_bus import EventsNotPublished

    def publish(events: list[BusEvent]) -> None:
        room = max(count - len(sink), 0)
        sink.extend(events[:room])
        if len(events) > room:
            raise EventsNotPublished(room, "EventBridge refused events.")

    return publish


SECRET_NAMES = re.compile(r"hash|digest|token|secret|password|last_request", re.I)


def test_no_event_carries_a_secret_or_a_write_token(stores: Stores, stream: Stream) -> None:
    add(stores, new_codes("spring", 3, "SAFE"))
    claimed = stores.codes.claim(SINGLE, Issuance(moment(), ACTOR, Recipient("crm.contact", "7")))
    stores.codes.redeem("acme", claimed.value, Issuance(moment(), ACTOR))
    item = stores.table.get({"pk": {"S": f"T#acme#V#{claimed.value}"}, "sk": {"S": "CODE"}})
    assert item is not None

    stream.settle()

    text = json.dumps([event.envelope("us-east-1") for event in stream.published])
    assert item["last_request"]["S"] not in text
    keys = re.findall(r'"([^"]+)":', text)
    assert not [key for key in keys if SECRET_NAMES.search(key)]


def test_a_hold_its_release_and_a_redemption_through_a_hold_are_announced(
    stores: Stores, stream: Stream
) -> None:
    add(stores, [NewCode("party", "HOLD-1")])
    ann = Issuance(moment(), "maestra:shop", Recipient("maestra.webSiteUserId", "ann"))
    bob = ann._replace(recipient=Recipient("maestra.webSiteUserId", "bob"))
    until = moment(1)
    stores.codes.reserve("acme", "HOLD-1", ann, until)
    stores.codes.release("acme", "HOLD-1", ann)
    stores.codes.reserve("acme", "HOLD-1", bob, until)
    stores.codes.redeem("acme", "HOLD-1", bob)

    stream.settle()

    code_events = [kind for kind in stream.kinds() if not kind.startswith("Pool")]
    assert code_events == [
        "CodesAdded",
        "CodeReserved",
        "CodeReleased",
        "CodeReserved",
        "CodeRedeemed",
    ]
    reserved = [event.detail for event in stream.of_kind("CodeReserved")]
    assert [(d["holder"]["id"], d["uses_left"]) for d in reserved] == [("ann", 2), ("bob", 2)]
    assert reserved[0]["until"] == clock.to_stored(until)
    released = only(stream, "CodeReleased")
    assert (released["holder"], released["uses_left"]) == (
        {"kind": "maestra.webSiteUserId", "id": "ann"},
        3,
    )
    assert only(stream, "CodeRedeemed")["redeemed_by"] == "bob"
    for event in stream.of_kind("CodeReserved"):
        assert_valid(event)
