"""What a change of a code tells, in isolation: its events (one table of kinds), the buckets it
moves between, a pool's alert levels, and how events are sent to EventBridge."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from promo.domain.events import CODE_EVENTS, CodeImage, Use, code_events, codes_added, pool_event
from promo.domain.inventory import AlertLevel, alert_level, crossed
from promo.domain.models import ActivityState, CodeState, Recipient
from promo.event_bus import BusEvent, EventBusPublisher, EventsNotPublished, entry_size
from promo.services.inventory import code_deltas
from promo.settings import Settings
from promo.store.change_records import CodeChange
from tests.support.event_schemas import problems, schemas

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def code(**changes: Any) -> CodeImage:
    base = CodeImage(
        tenant_id="acme",
        pool_id="spring",
        value="SPRING-1",
        uuid="0195a1b2-c3d4-8e5f-8000-000000000007",
        number=7,
        state=CodeState.AVAILABLE,
        activity=ActivityState.ACTIVE,
        staged=False,
        created_at=T0,
        created_by="mews:front-desk",
        updated_at=T0,
        updated_by="mews:front-desk",
    )
    return base._replace(**changes)


LATER = T0 + timedelta(hours=1)
ISSUED = code(
    state=CodeState.ISSUED,
    issued_at=LATER,
    updated_at=LATER,
    updated_by="maestra:shop",
    recipient=Recipient("maestra.webSiteUserId", "42"),
    issued_point_of_contact="shop",
)
REDEEMED = ISSUED._replace(
    state=CodeState.USED,
    uses_left=0,
    redemptions=(Use(LATER, "crm:till", "42", "unit-1"),),
)
ROLLED_BACK = REDEEMED._replace(
    state=CodeState.ISSUED, uses_left=1, rollbacks=(Use(LATER, "admin:ops", reason="refund"),)
)


@pytest.mark.parametrize(
    ("old", "new", "kinds"),
    [
        (None, code(), ["CodesAdded"]),
        (None, code(staged=True), []),  # not a code until its add commits
        (code(), ISSUED, ["CodeIssued"]),
        (None, ISSUED, ["CodesAdded", "CodeIssued"]),  # created issued (by value)
        (ISSUED, REDEEMED, ["CodeRedeemed"]),
        (code(), REDEEMED._replace(issued_at=None), ["CodeRedeemed"]),  # redeemed, never issued
        (REDEEMED, ROLLED_BACK, ["RedemptionRolledBack"]),  # ISSUED again, not a new issue
        (ISSUED, ISSUED._replace(state=CodeState.BLOCKED, blocked_at=LATER), ["CodeBlocked"]),
        (code(), code(activity=ActivityState.DELETED, deleted_at=LATER), ["CodeDeleted"]),
        (code(staged=True), ISSUED, ["CodeIssued"]),  # a bulk-added code's first change
        (code(staged=True), None, []),  # a stage rolled back: never was a code
        (ISSUED, ISSUED._replace(updated_at=LATER), []),  # nothing that is an event
    ],
)
def test_each_change_tells_its_events(
    old: CodeImage | None, new: CodeImage | None, kinds: list[str]
) -> None:
    events = code_events(old, new)

    assert [event.kind for event in events] == kinds
    for event in events:
        assert problems(event.kind, {"id": "x", **event.detail}) == []


def test_a_multi_use_codes_second_redemption_is_a_redemption_while_it_stays_used() -> None:
    once = code(state=CodeState.USED, uses_left=2, redemptions=(Use(T0, "a", "c1"),))
    twice = once._replace(uses_left=1, redemptions=(*once.redemptions, Use(LATER, "b", "c2")))

    (event,) = code_events(once, twice)

    assert event.kind == "CodeRedeemed"
    assert (event.detail["uses_left"], event.detail["redeemed_by"], event.detail["actor"]) == (
        1,
        "c2",
        "b",
    )
    assert code_deltas(CodeChange("e", "1", once, twice)) == {}  # used it stays


def test_every_kind_of_code_event_is_one_entry_with_a_schema_in_the_docs() -> None:
    names = [kind.name for kind in CODE_EVENTS]

    assert names == [
        "CodesAdded",
        "CodeIssued",
        "CodeRedeemed",
        "RedemptionRolledBack",
        "CodeReserved",
        "CodeReleased",
        "CodeBlocked",
        "CodeDeleted",
    ]
    assert set(names) <= set(schemas())


@pytest.mark.parametrize(
    ("old", "new", "deltas"),
    [
        (None, code(), {"available": 1}),
        (None, code(staged=True), {"staged": 1}),
        (code(staged=True), None, {"staged": -1}),
        (code(staged=True), ISSUED, {"available": -1, "issued": 1}),  # committed by then
        (code(), ISSUED, {"available": -1, "issued": 1}),
        (REDEEMED, ROLLED_BACK, {"used": -1, "issued": 1}),
        (ISSUED, ISSUED._replace(activity=ActivityState.DELETED), {"issued": -1, "deleted": 1}),
        (
            ISSUED._replace(state=CodeState.BLOCKED),
            ISSUED._replace(state=CodeState.BLOCKED, activity=ActivityState.DELETED),
            {"blocked": -1, "deleted": 1},
        ),
    ],
)
def test_a_change_moves_a_code_from_one_bucket_to_another(
    old: CodeImage | None, new: CodeImage | None, deltas: dict[str, int]
) -> None:
    assert code_deltas(CodeChange("e", "1", old, new)) == {("acme", "spring"): deltas}


@pytest.mark.parametrize(
    ("available", "watermark", "level"),
    [
        (10, 3, AlertLevel.OK),
        (3, 3, AlertLevel.LOW),
        (1, 3, AlertLevel.LOW),
        (0, 3, AlertLevel.EMPTY),
        (-2, 3, AlertLevel.EMPTY),  # a count briefly behind: still empty
        (1, None, AlertLevel.OK),
        (0, None, AlertLevel.EMPTY),
    ],
)
def test_a_pools_level(available: int, watermark: int | None, level: AlertLevel) -> None:
    assert alert_level(available, watermark) is level


def test_only_a_fall_crosses_a_threshold_and_a_pool_without_a_watermark_is_never_low() -> None:
    ok, low, empty = AlertLevel.OK, AlertLevel.LOW, AlertLevel.EMPTY

    assert crossed(ok, low, 5) == [low]
    assert crossed(ok, empty, 5) == [low, empty]
    assert crossed(low, empty, 5) == [empty]
    assert crossed(empty, low, 5) == []  # refilled a little: re-armed, nothing announced
    assert crossed(low, ok, 5) == []
    assert crossed(ok, empty, None) == [empty]


def test_a_bulk_adds_codes_are_announced_100_to_an_event_and_pool_events_match_their_schema() -> (
    None
):
    codes = [code(value=f"BULK-{i}", number=i + 1) for i in range(250)]

    events = codes_added("acme", "spring", codes, "admin:import", T0, "batch-1")
    low = pool_event(AlertLevel.LOW, "acme", "spring", 3, 5, T0)
    empty = pool_event(AlertLevel.EMPTY, "acme", "spring", -1, None, T0)

    assert [event.detail["count"] for event in events] == [100, 100, 50]
    for event in [*events, low, empty]:
        assert problems(event.kind, {"id": "x", **event.detail}) == []
    assert empty.detail["available"] == 0


# ---------------------------------------------------------------------- EventBridge


class FakeEvents:
    """PutEvents that refuses the entries named in ``refuse`` (by detail id) ``times`` times."""

    def __init__(self, refuse: set[str] | None = None, times: int = 1) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.refuse = refuse or set()
        self.times = times

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries)
        results = []
        for entry in Entries:
            if entry["Detail"].split('"id":"')[1].split('"')[0] in self.refuse and self.times:
                results.append({"ErrorCode": "InternalFailure"})
            else:
                results.append({"EventId": "ok"})
        if any("ErrorCode" in r for r in results):
            self.times -= 1
        return {"FailedEntryCount": 0, "Entries": results}


def bus_event(index: int, padding: int = 0) -> BusEvent:
    detail = {"id": f"e{index}", "kind": "CodeIssued", "pad": "x" * padding}
    return BusEvent(f"e{index}", "CodeIssued", T0, detail)


def publisher(fake: FakeEvents) -> EventBusPublisher:
    settings = Settings.model_validate({"EVENT_BUS_NAME": "bus"})
    sent = EventBusPublisher(settings, None)  # type: ignore[arg-type]
    sent._client = fake
    return sent


def test_events_go_ten_to_a_call_and_under_256_kb_in_order() -> None:
    fake = FakeEvents()
    events = [bus_event(i) for i in range(23)] + [bus_event(100 + i, 100_000) for i in range(5)]

    publisher(fake)(events)

    # 3 small and 2 large fit in 256 KB; a third large one does not.
    assert [len(call) for call in fake.calls] == [10, 10, 5, 2, 1]
    by_detail = {event.detail_json(): event for event in events}
    for call in fake.calls:
        assert sum(entry_size(by_detail[entry["Detail"]]) for entry in call) <= 256 * 1024
    sent = [entry["Detail"] for call in fake.calls for entry in call]
    assert sent == [event.detail_json() for event in events]
    assert {entry["EventBusName"] for call in fake.calls for entry in call} == {"bus"}


def test_an_entry_eventbridge_refuses_is_sent_again() -> None:
    fake = FakeEvents(refuse={"e3"}, times=1)

    publisher(fake)([bus_event(i) for i in range(5)])

    assert [len(call) for call in fake.calls] == [5, 1]


def test_an_entry_refused_every_time_names_the_first_event_not_published() -> None:
    fake = FakeEvents(refuse={"e13"}, times=100)

    with pytest.raises(EventsNotPublished) as failed:
        publisher(fake)([bus_event(i) for i in range(20)])

    assert failed.value.first == 13


def test_without_a_bus_nothing_is_published_and_the_batch_is_kept() -> None:
    with pytest.raises(EventsNotPublished):
        EventBusPublisher(Settings(), None)([bus_event(0)])  # type: ignore[arg-type]
    EventBusPublisher(Settings(), None)([])  # type: ignore[arg-type]
