"""Maestra answers that match what happened (issue 15): async refuses at acceptance what sync
refuses and never loses a request silently; the effective time is bounded; every
authentication failure reads the same. Every refusal leaves the table as it was."""

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.maestra_async.app import handler as async_handler
from functions.maestra_worker.app import handler as worker_handler
from promo import bootstrap
from promo.bootstrap import services
from promo.domain import clock
from promo.domain.models import NewCode
from tests.protocol.test_maestra import KEY, by_value, call, customer
from tests.support.builders import ACTOR
from tests.support.deployment import invoke, use_sender
from tests.support.tables import Stores
from tools import admin
from tools.local_stack import LocalQueue
from tools.router import Router
from tools.template import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def demo(deployed: Stores) -> Stores:
    """The demo data, created 60 days ago: a backdated request may issue a code only if the
    code existed at its effective time."""
    created = clock.now() - timedelta(days=60)
    with pytest.MonkeyPatch.context() as earlier:
        earlier.setattr(clock, "now", lambda: created)
        admin.apply_config(ROOT / "config" / "demo.yaml", services())
    return deployed


@pytest.fixture
def queued(demo: Stores) -> Iterator[list[dict[str, Any]]]:
    """What /async queues, instead of SQS."""
    messages: list[dict[str, Any]] = []
    use_sender(messages.append)
    yield messages
    use_sender(None)


def table_items(stores: Stores) -> list[dict[str, Any]]:
    """Every item of the table, in a stable order: what "the table is unchanged" compares."""
    items = list(stores.table.paginate(stores.table.scan))
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def without_error_id(answer: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in answer.items() if name != "errorId"}


# ---------------------------------------------------------------- one 401 for every failure


BAD_CREDENTIALS = {
    "unknown endpoint": ({"endpointId": "no-such-endpoint"}, f"SecretKey {KEY}"),
    "no endpoint": ({"endpointId": ""}, f"SecretKey {KEY}"),
    "no key": ({}, None),
    "wrong key": ({}, "SecretKey wrong"),
    "wrong scheme": ({}, f"Bearer {KEY}"),
    "wrong legacy key": ({}, f'Mindbox secretKey="{KEY}x"'),
    "unknown endpoint without a key": ({"endpointId": "no-such-endpoint"}, None),
}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_given_any_bad_credentials_when_calling_then_every_401_is_the_same_word_for_word(
    demo: Stores, fmt: str
) -> None:
    before = table_items(demo)

    answers = {
        case: call("IssueSpringPromoCode", customer(), query=query, authorization=header, fmt=fmt)
        for case, (query, header) in BAD_CREDENTIALS.items()
    }

    statuses = {case: status for case, (status, _, _) in answers.items()}
    bodies = {case: without_error_id(body) for case, (_, body, _) in answers.items()}
    assert set(statuses.values()) == {401}, statuses
    assert len({repr(sorted(body.items())) for body in bodies.values()}) == 1, bodies
    assert bodies["unknown endpoint"]["status"] == "ProtocolError"
    assert table_items(demo) == before


# ---------------------------------------------------------------- bounded effective time


def dated(body: dict[str, Any], at: datetime | str) -> dict[str, Any]:
    stamp = at if isinstance(at, str) else clock.format_maestra(at)
    return {**body, "executionDateTimeUtc": stamp}


def refused_at_the_field(answer: dict[str, Any]) -> bool:
    return answer["status"] == "ValidationError" and [
        m["location"] for m in answer["validationMessages"]
    ] == ["/executionDateTimeUtc"]


def set_look_back(days: int) -> None:
    svc = services()
    endpoint = svc.credentials.maestra_endpoint("demo-website")
    assert endpoint is not None
    svc.credentials.put_maestra_endpoint(endpoint._replace(look_back_days=days))


# Every step kind of the demo endpoint, each with a body it would perform.
STEPS = {
    "from a pool": ("IssueSpringPromoCode", customer()),
    "by value": ("IssuePromoCodeByValue", by_value("SPRING-7KQ3")),
    "create and issue": ("CreateSpringPromoCode", by_value("BRAND-NEW")),
    "redeem": ("RedeemPromoCode", by_value("SPRING-M4XR")),
}

OUT_OF_BOUNDS: dict[str, Callable[[datetime], datetime | str]] = {
    "year 0001": lambda now: "0001-01-01 00:00:00.000",
    "year 9999": lambda now: "9999-12-31 23:59:59.999",
    "8 days back": lambda now: now - timedelta(days=8),
    "7 days and 6 minutes back": lambda now: now - timedelta(days=7, minutes=6),
    "10 minutes ahead": lambda now: now + timedelta(minutes=10),
    "a year ahead": lambda now: now + timedelta(days=365),
}


@pytest.mark.parametrize("moment", OUT_OF_BOUNDS, ids=list(OUT_OF_BOUNDS))
@pytest.mark.parametrize("step", STEPS, ids=list(STEPS))
def test_given_the_default_bounds_when_a_request_dates_itself_outside_them_then_it_is_a_validation_error_and_nothing_changes(
    demo: Stores, step: str, moment: str
) -> None:
    operation, body = STEPS[step]
    before = table_items(demo)

    status, answer, _ = call(operation, dated(body, OUT_OF_BOUNDS[moment](clock.now())))

    assert status == 200
    assert refused_at_the_field(answer), answer
    assert table_items(demo) == before


def test_given_the_default_bounds_when_a_request_dates_itself_within_them_then_it_is_performed_at_that_time(
    demo: Stores,
) -> None:
    now = clock.now()
    six_days_back = now - timedelta(days=6, hours=23)
    ahead = now + timedelta(minutes=4)

    _, back, _ = call("IssueSpringPromoCode", dated(customer(), six_days_back))
    _, forward, _ = call("IssueSpringPromoCode", dated(customer(), ahead))

    assert back["promoCode"]["issueStatus"] == "Issued"
    assert back["promoCode"]["issuedDateTimeUtc"] == clock.format_maestra(six_days_back)
    assert forward["promoCode"]["issueStatus"] == "Issued"
    assert forward["promoCode"]["issuedDateTimeUtc"] == clock.format_maestra(ahead)


def test_given_an_endpoint_with_a_longer_look_back_when_a_request_dates_itself_within_it_then_it_is_performed(
    demo: Stores,
) -> None:
    set_look_back(30)
    before = table_items(demo)

    _, within, _ = call("IssueSpringPromoCode", dated(customer(), clock.now() - timedelta(days=20)))
    after_within = table_items(demo)
    _, beyond, _ = call("IssueSpringPromoCode", dated(customer(), clock.now() - timedelta(days=31)))

    assert within["promoCode"]["issueStatus"] == "Issued"
    assert after_within != before
    assert refused_at_the_field(beyond), beyond
    assert table_items(demo) == after_within


def test_given_an_endpoint_without_look_back_when_a_request_dates_itself_back_then_only_the_clock_skew_is_allowed(
    demo: Stores,
) -> None:
    set_look_back(0)
    before = table_items(demo)

    _, an_hour, _ = call(
        "IssueSpringPromoCode", dated(customer(), clock.now() - timedelta(hours=1))
    )
    unchanged = table_items(demo)
    _, a_minute, _ = call(
        "IssueSpringPromoCode", dated(customer(), clock.now() - timedelta(minutes=1))
    )

    assert refused_at_the_field(an_hour), an_hour
    assert unchanged == before
    assert a_minute["promoCode"]["issueStatus"] == "Issued"


def test_given_no_clock_skew_allowed_when_a_request_dates_itself_a_minute_ahead_then_it_is_refused(
    demo: Stores,
) -> None:
    svc = services()
    strict = svc.settings.model_copy(update={"maestra_clock_skew_seconds": 0})
    bootstrap.install(svc._replace(settings=strict))
    before = table_items(demo)

    _, answer, _ = call(
        "IssueSpringPromoCode", dated(customer(), clock.now() + timedelta(minutes=1))
    )

    assert refused_at_the_field(answer), answer
    assert table_items(demo) == before


def add_code_now(stores: Stores, value: str) -> None:
    pool = stores.catalog.get_pool("demo", "spring")
    assert pool is not None
    stores.codes.add("demo", {"spring": pool}, [NewCode("spring", value)], ACTOR)


BEFORE_CREATION = {
    "by value": ("IssuePromoCodeByValue", by_value("FRESH-1")),
    "create and issue, the code exists": ("CreateSpringPromoCode", by_value("FRESH-1")),
    "redeem": ("RedeemPromoCode", by_value("FRESH-1")),
}


@pytest.mark.parametrize("step", BEFORE_CREATION, ids=list(BEFORE_CREATION))
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_given_a_code_created_now_when_a_request_dates_itself_before_its_creation_then_it_is_a_validation_error_and_nothing_changes(
    demo: Stores, step: str, fmt: str
) -> None:
    add_code_now(demo, "FRESH-1")
    operation, body = BEFORE_CREATION[step]
    before = table_items(demo)

    status, answer, _ = call(operation, dated(body, clock.now() - timedelta(days=1)), fmt=fmt)

    assert status == 200
    assert refused_at_the_field(answer), answer
    assert table_items(demo) == before


def test_given_a_code_created_now_when_a_request_dates_itself_after_its_creation_then_it_is_performed(
    demo: Stores,
) -> None:
    add_code_now(demo, "FRESH-2")
    after_creation = clock.now() + timedelta(seconds=1)

    _, issued, _ = call("IssuePromoCodeByValue", dated(by_value("FRESH-2"), after_creation))
    _, redeemed, _ = call("RedeemPromoCode", dated(by_value("FRESH-2"), after_creation))

    assert issued["promoCode"]["issueStatus"] == "Issued"
    assert redeemed["status"] == "Success"
    assert redeemed["promoCode"]["usedDateTimeUtc"] == clock.format_maestra(after_creation)


def test_given_async_when_a_request_dates_itself_out_of_bounds_then_it_is_refused_at_once_and_nothing_is_queued(
    demo: Stores,
) -> None:
    queued: list[dict[str, Any]] = []
    use_sender(queued.append)
    before = table_items(demo)

    answers = [
        call(
            "IssueSpringPromoCode",
            dated(customer(), moment),
            path="/v3/operations/async",
            handler=async_handler,
        )[1]
        for moment in ("0001-01-01 00:00:00.000", "9999-12-31 23:59:59.999")
    ]

    assert all(refused_at_the_field(answer) for answer in answers), answers
    assert queued == []
    assert table_items(demo) == before


def test_given_a_config_file_with_a_look_back_when_applied_then_the_endpoint_has_it(
    demo: Stores, tmp_path: Path
) -> None:
    document = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    document["tenants"][0]["maestra_endpoints"][0]["look_back_days"] = 30
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))

    admin.apply_config(path, services())

    configured = services().credentials.maestra_endpoint("demo-website")
    path.write_text((ROOT / "config" / "demo.yaml").read_text())  # the key omitted: default
    admin.apply_config(path, services())
    defaulted = services().credentials.maestra_endpoint("demo-website")

    assert configured is not None
    assert configured.look_back_days == 30
    assert defaulted is not None
    assert defaulted.look_back_days == 7


# ---------------------------------------------------------------- async refuses what sync refuses


def call_async(operation: str, body: dict[str, Any] | bytes, **options: Any) -> tuple[int, Any]:
    status, answer, _ = call(
        operation, body, path="/v3/operations/async", handler=async_handler, **options
    )
    return status, answer


# Requests sync refuses before it performs anything: (operation, body, query).
REFUSED_BY_SYNC: dict[str, tuple[str, dict[str, Any] | bytes, dict[str, str]]] = {
    "unknown operation": ("NoSuchOperation", customer(), {}),
    "malformed body": ("IssueSpringPromoCode", b"{not json", {}),
    "field not allowed": ("IssueSpringPromoCode", by_value("SPRING-7KQ3"), {}),
    "field missing": ("IssuePromoCodeByValue", customer(), {}),
    "value too long": ("IssuePromoCodeByValue", by_value("X" * 129), {}),
    "invalid date": ("IssueSpringPromoCode", {"executionDateTimeUtc": "22.06.2025"}, {}),
    "date out of bounds": (
        "IssueSpringPromoCode",
        dated(customer(), "0001-01-01 00:00:00.000"),
        {},
    ),
    "unknown endpoint": ("IssueSpringPromoCode", customer(), {"endpointId": "no-such-endpoint"}),
}


@pytest.mark.parametrize("case", REFUSED_BY_SYNC, ids=list(REFUSED_BY_SYNC))
def test_given_a_request_sync_refuses_when_sent_to_async_then_async_answers_the_same_and_queues_nothing(
    demo: Stores, queued: list[dict[str, Any]], case: str
) -> None:
    operation, body, query = REFUSED_BY_SYNC[case]
    before = table_items(demo)

    sync_status, sync_answer, _ = call(operation, body, query=query)
    async_status, async_answer = call_async(operation, body, query=query)

    assert sync_answer["status"] != "Success"
    assert (async_status, without_error_id(async_answer)) == (
        sync_status,
        without_error_id(sync_answer),
    )
    assert queued == []
    assert table_items(demo) == before


def test_given_a_transaction_id_used_with_one_body_when_async_gets_it_with_another_then_it_answers_what_sync_answers_and_queues_nothing(
    demo: Stores, queued: list[dict[str, Any]]
) -> None:
    tx = {"transactionId": "tx-reused"}
    call("IssueSpringPromoCode", customer("1"), query=tx)
    before = table_items(demo)

    sync_status, sync_answer, _ = call("IssueSpringPromoCode", customer("2"), query=tx)
    async_status, async_answer = call_async("IssueSpringPromoCode", customer("2"), query=tx)

    assert (sync_status, sync_answer["status"]) == (400, "ProtocolError")
    assert (async_status, without_error_id(async_answer)) == (
        sync_status,
        without_error_id(sync_answer),
    )
    assert queued == []
    assert table_items(demo) == before


def test_given_a_transaction_id_performed_when_async_gets_it_again_with_the_same_body_then_it_answers_success_and_queues_nothing(
    demo: Stores, queued: list[dict[str, Any]]
) -> None:
    tx = {"transactionId": "tx-again"}
    call_async("IssueSpringPromoCode", customer("1"), query=tx)
    assert invoke(worker_handler, sqs(queued[0]), "worker") == {"batchItemFailures": []}
    before = table_items(demo)

    status, answer = call_async("IssueSpringPromoCode", customer("1"), query=tx)

    assert (status, answer) == (200, {"status": "Success"})
    assert len(queued) == 1
    assert table_items(demo) == before


# ---------------------------------------------------------------- the worker loses nothing


def sqs(*messages: dict[str, Any] | str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{number}",
                "body": message if isinstance(message, str) else json.dumps(message),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
            }
            for number, message in enumerate(messages)
        ]
    }


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The worker's refusal lines: level and the names it gives the call."""
    return [
        {
            "level": record.levelname,
            **{
                name: getattr(record, name, None)
                for name in ("endpoint", "operation", "transactionId", "refusal", "reason")
            },
        }
        for record in caplog.records
        if record.getMessage() == "Async operation refused"
    ]


def refused_count(output: str) -> int:
    """``AsyncOperationsRefused`` as the flushed metrics (EMF lines) count it."""
    total = 0
    for text in output.splitlines():
        line = json.loads(text) if text.startswith("{") else {}
        if "_aws" in line:
            value = line.get("AsyncOperationsRefused", 0)
            total += int(sum(value) if isinstance(value, list) else value)
    return total


def test_given_two_bodies_accepted_under_one_transaction_id_when_the_worker_performs_both_then_the_second_goes_back_to_the_queue_logged_and_counted(
    demo: Stores,
    queued: list[dict[str, Any]],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Both accepted before either was performed: acceptance cannot see the conflict yet.
    tx = {"transactionId": "tx-race"}
    call_async("IssueSpringPromoCode", customer("1"), query=tx)
    call_async("IssueSpringPromoCode", customer("2"), query=tx)
    first, second = queued
    assert invoke(worker_handler, sqs(first), "worker") == {"batchItemFailures": []}
    before = table_items(demo)
    capfd.readouterr()
    caplog.clear()

    answer = invoke(worker_handler, sqs(second), "worker")

    output = capfd.readouterr().out
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    [line] = refusal_lines(caplog)
    assert line["level"] == "ERROR"
    assert (line["operation"], line["transactionId"], line["endpoint"]) == (
        "IssueSpringPromoCode",
        "tx-race",
        "demo-website",
    )
    assert line["refusal"] == "IdempotencyConflict"
    assert refused_count(output) == 1
    assert table_items(demo) == before


def test_given_messages_the_worker_cannot_perform_when_delivered_with_one_it_can_then_only_they_go_back_each_logged_and_counted(
    demo: Stores,
    queued: list[dict[str, Any]],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    call_async("IssueSpringPromoCode", customer("1"))
    call_async("IssueSpringPromoCode", customer("2"), query={"transactionId": "tx-removed"})
    good, accepted = queued
    removed = {**accepted, "operation": "RemovedSinceAcceptance"}
    capfd.readouterr()
    caplog.clear()

    answer = invoke(worker_handler, sqs(good, removed, "not json"), "worker")

    output = capfd.readouterr().out
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    lines = refusal_lines(caplog)
    assert [(line["operation"], line["transactionId"]) for line in lines] == [
        ("RemovedSinceAcceptance", "tx-removed"),
        (None, None),
    ]
    assert [line["refusal"] for line in lines] == ["UnknownOperation", "JSONDecodeError"]
    assert refused_count(output) == 2
    assert len([c for _, c in demo.codes.list("demo", ["spring"]) if c.issued_at]) == 1


def test_given_the_local_stack_queue_when_the_worker_refuses_a_message_then_it_reaches_the_dead_letter_queue(
    demo: Stores,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # SQS's redelivery delay
    local = LocalQueue(Router())
    local.start()
    try:
        call_async("IssueSpringPromoCode", customer("1"), query={"transactionId": "tx-local"})
        local.send(
            {
                "endpoint": "demo-website",
                "operation": "IssueSpringPromoCode",
                "key": "tx-local",
                "fingerprint": "another body",
                "received_at": clock.to_stored(clock.now()),
                "body": customer("2"),
            }
        )
        local.drain()
    finally:
        local.stop()

    captured = capfd.readouterr()
    assert len(refusal_lines(caplog)) == LocalQueue.MAX_RECEIVES
    assert captured.err.count("moved to the dead-letter queue") == 1
    assert len([c for _, c in demo.codes.list("demo", ["spring"]) if c.issued_at]) == 1
