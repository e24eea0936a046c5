"""Maestra (Mindbox) v3 operations: every issue status, every cell of the page's mandatory /
disallowed table, XML and JSON, backdating, transactionId idempotency and async exactly once."""

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from lxml import etree

from functions.maestra_async.app import handler as async_handler
from functions.maestra_sync.app import handler as sync_handler
from functions.maestra_worker.app import handler as worker_handler
from promo import aws
from promo.bootstrap import services
from promo.domain import clock
from promo.domain.models import CodeState, NewCode, Recipient, Window
from promo.queue import QueueSender
from tests.support.builders import ACTOR
from tests.support.deployment import event, fixture_path, invoke, use_sender
from tests.support.tables import Stores
from tools import admin
from tools.lambda_runtime import http_api_event
from tools.template import ROOT

pytestmark = pytest.mark.integration

KEY = "demo-maestra-secret-key"


def element_paths(root: etree._Element) -> list[str]:
    tree = root.getroottree()
    return [tree.getpath(element).replace("[1]", "") for element in root.iter()]


PAGE_ORDER = element_paths(etree.parse(str(fixture_path("maestra/result.xml"))).getroot())


@pytest.fixture
def demo(deployed: Stores) -> Stores:
    admin.apply_config(ROOT / "config" / "demo.yaml", services())
    return deployed


def call(
    operation: str,
    body: dict[str, Any] | bytes | None = None,
    *,
    fmt: str = "json",
    accept: str | None = None,
    path: str = "/v3/operations/sync",
    query: dict[str, str] | None = None,
    authorization: str | None = f"SecretKey {KEY}",
    handler: Callable[..., dict[str, Any]] = sync_handler,
) -> tuple[int, Any, str]:
    parameters = {
        "endpointId": "demo-website",
        "operation": operation,
        "deviceUUID": "",
        **(query or {}),
    }
    if isinstance(body, bytes):
        raw = body
    elif fmt == "xml":
        root = etree.Element("operation")
        _to_xml(root, body or {})
        raw = etree.tostring(root)
    else:
        raw = json.dumps(body or {}).encode()
    headers = {"content-type": f"application/{fmt}"}
    if accept:
        headers["accept"] = accept
    if authorization:
        headers["authorization"] = authorization
    request = http_api_event(
        "POST", path, f"POST {path}", raw, headers, parameters, None, urlencode(parameters)
    )
    response = invoke(handler, request)
    content_type = response["headers"]["content-type"]
    text = response["body"]
    parsed = (
        _from_xml(etree.fromstring(text.encode())) if "xml" in content_type else json.loads(text)
    )
    return response["statusCode"], parsed, text


def _to_xml(parent: etree._Element, data: dict[str, Any]) -> None:
    for name, value in data.items():
        if isinstance(value, dict):
            _to_xml(etree.SubElement(parent, name), value)
        else:
            etree.SubElement(parent, name).text = str(value)


def _from_xml(element: etree._Element) -> Any:
    children = list(element)
    if not children:
        return element.text
    if element.tag == "validationMessages":
        return [_from_xml(child) for child in children]
    return {child.tag: _from_xml(child) for child in children}


def customer(user: str = "42") -> dict[str, Any]:
    """A body for IssueSpringPromoCode, whose pool is fixed by the operation step."""
    return {"customer": {"ids": {"webSiteUserId": user}}}


def from_pool(pool: str = "spring-2025", user: str = "42") -> dict[str, Any]:
    return {
        "customer": {"ids": {"webSiteUserId": user}},
        "promoCode": {"pool": {"ids": {"externalId": pool}}},
    }


def by_value(value: str, pool: str | None = None, **code: str) -> dict[str, Any]:
    promo: dict[str, Any] = {"ids": {"value": value}, **code}
    if pool:
        promo["pool"] = {"ids": {"externalId": pool}}
    return {"customer": {"ids": {"webSiteUserId": "42"}}, "promoCode": promo}


def issued_values(stores: Stores, pool: str = "spring") -> list[str]:
    return [c.value for _, c in stores.codes.list("demo", [pool]) if c.issued_at is not None]


# ---------------------------------------------------------------- the page's example


def test_spec_example_creates_and_issues_backdated_in_the_page_result_shape(
    demo: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page's example dates itself 2025-06-22 16:18:29.510: sent within the endpoint's
    # look-back of that moment (docs/protocols/maestra.md, executionDateTimeUtc).
    sent = clock.parse_maestra("2025-06-22 17:00:00.000", "now")
    monkeypatch.setattr(clock, "now", lambda: sent)

    # The page's own body, executionDateTimeUtc included (events/maestra_sync.json leaves it
    # out, so that `sam local invoke` answers the same on any day).
    request = {**event("maestra_sync"), "body": fixture_path("maestra/operation.xml").read_text()}
    response = invoke(sync_handler, request)

    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("application/xml")
    root = etree.fromstring(response["body"].encode())
    paths = element_paths(root)
    assert paths == [path for path in PAGE_ORDER if path in paths]  # the page's elements, in order
    assert root.findtext("status") == "Success"
    code = root.find("promoCode")
    assert code is not None
    assert code.findtext("issueStatus") == "Issued"
    assert code.findtext("ids/value") == "SUMMER-2025-A1"
    assert code.findtext("ids/mindboxId", "").isdigit()
    assert code.findtext("pool/ids/externalId") == "spring-2025"
    assert code.findtext("pool/name") == "Spring sale"
    assert code.findtext("pool/description") == "10% off everything in spring"
    assert code.findtext("availableFromDateTimeUtc") == "2025-01-01 00:00:00.000"
    assert code.findtext("availableTillDateTimeUtc") == "2035-12-31 23:59:59.999"
    assert code.findtext("isUsed") == "false"
    assert code.findtext("issuedPointOfContact/ids/externalId") == "demo-website"
    assert code.findtext("issuedDateTimeUtc") == "2025-06-22 16:18:29.510"  # backdated
    stored = demo.codes.get("demo", "SUMMER-2025-A1")
    assert stored is not None
    assert stored.issued_to == Recipient("maestra.webSiteUserId", "5384275")


# ---------------------------------------------------------------- issue statuses


def test_from_a_fixed_pool_issues_a_code_and_records_customer_and_point_of_contact(
    demo: Stores,
) -> None:
    status, body, _ = call("IssueSpringPromoCode", {"customer": {"ids": {"webSiteUserId": "7"}}})

    assert status == 200
    assert body["status"] == "Success"
    code = body["promoCode"]
    assert code["issueStatus"] == "Issued"
    assert code["pool"]["ids"]["externalId"] == "spring-2025"
    stored = demo.codes.get("demo", code["ids"]["value"])
    assert stored is not None
    assert stored.issued_to == Recipient("maestra.webSiteUserId", "7")
    assert stored.issued_point_of_contact is not None
    assert stored.issued_point_of_contact.external_id == "demo-website"
    assert stored.number == code["ids"]["mindboxId"]


def test_an_unknown_value_is_promo_code_not_found(demo: Stores) -> None:
    _, body, _ = call("IssuePromoCodeByValue", by_value("NO-SUCH-CODE"))

    assert body["status"] == "Success"
    assert body["promoCode"] == {
        "issueStatus": "PromoCodeNotFound",
        "ids": {"value": "NO-SUCH-CODE"},
    }


def test_an_unknown_pool_is_promo_code_pool_not_found(demo: Stores) -> None:
    _, body, _ = call("IssuePromoCodeFromPool", from_pool("no-such-pool"))

    assert body["promoCode"] == {
        "issueStatus": "PromoCodePoolNotFound",
        "pool": {"ids": {"externalId": "no-such-pool"}},
    }


def test_an_exhausted_pool_is_no_available_promo_codes_in_pool(demo: Stores) -> None:
    outcomes = [
        call("IssuePromoCodeFromPool", from_pool("welcome"))[1]["promoCode"]["issueStatus"]
        for _ in range(4)
    ]

    assert outcomes == ["Issued", "Issued", "Issued", "NoAvailablePromoCodesInPool"]


def test_an_issued_code_is_not_available_for_issue(demo: Stores) -> None:
    first = call("IssuePromoCodeByValue", by_value("WELCOME-4F7Q"))[1]
    second = call("IssuePromoCodeByValue", by_value("WELCOME-4F7Q"))[1]

    assert first["promoCode"]["issueStatus"] == "Issued"
    assert second["promoCode"]["issueStatus"] == "NotAvailableForIssue"
    assert second["promoCode"]["issuedDateTimeUtc"] == first["promoCode"]["issuedDateTimeUtc"]


def test_outside_the_codes_window_is_not_in_issue_date_time_range(
    demo: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = demo.catalog.get_pool("demo", "welcome")
    assert pool is not None
    now = clock.now()
    # A code added six days ago, valid for its first three days: expired now. (A request may
    # not date itself ahead of now, nor before its code was created.)
    monkeypatch.setattr(clock, "now", lambda: now - timedelta(days=6))
    demo.codes.add(
        "demo",
        {"welcome": pool},
        [NewCode("welcome", "EARLIER", Window(now - timedelta(days=6), now - timedelta(days=3)))],
        ACTOR,
    )
    monkeypatch.undo()

    _, now_body, _ = call("IssuePromoCodeByValue", by_value("EARLIER"))
    earlier = clock.format_maestra(now - timedelta(days=4))
    _, backdated, _ = call(
        "IssuePromoCodeByValue", {**by_value("EARLIER"), "executionDateTimeUtc": earlier}
    )

    assert now_body["promoCode"]["issueStatus"] == "NotInIssueDateTimeRange"
    assert backdated["promoCode"]["issueStatus"] == "Issued"
    assert backdated["promoCode"]["issuedDateTimeUtc"] == earlier


def test_a_created_code_takes_the_requests_window(demo: Stores) -> None:
    _, expired, _ = call(
        "CreateSpringPromoCode",
        by_value(
            "OLD-ONE",
            availableFromDateTimeUtc="2020-01-01 00:00:00.000",
            availableTillDateTimeUtc="2020-12-31 00:00:00.000",
        ),
    )
    _, made, _ = call(
        "CreateSpringPromoCode",
        by_value(
            "NEW-ONE",
            availableFromDateTimeUtc="2020-01-01 00:00:00.000",
            availableTillDateTimeUtc="2040-12-31 00:00:00.000",
        ),
    )

    assert expired["promoCode"]["issueStatus"] == "NotInIssueDateTimeRange"
    assert demo.codes.get("demo", "OLD-ONE") is None
    assert made["promoCode"]["issueStatus"] == "Issued"
    assert made["promoCode"]["availableTillDateTimeUtc"] == "2040-12-31 00:00:00.000"


def test_creation_enabled_issues_an_existing_code_of_the_pool_too(demo: Stores) -> None:
    _, body, _ = call("CreateAndIssuePromoCode", by_value("SPRING-7KQ3", pool="spring-2025"))
    _, other_pool, _ = call("CreateAndIssuePromoCode", by_value("WELCOME-9KD2", pool="spring-2025"))

    assert body["promoCode"]["issueStatus"] == "Issued"
    assert other_pool["promoCode"]["issueStatus"] == "NotAvailableForIssue"


# ---------------------------------------------------------------- the mandatory / disallowed table

TABLE = [
    # operation, body, location the ValidationError names
    (
        "IssuePromoCodeByValue",
        {"promoCode": {"pool": {"ids": {"externalId": "spring-2025"}}}},
        "/promoCode/ids",
    ),
    ("IssuePromoCodeByValue", by_value("SPRING-7KQ3", pool="spring-2025"), "/promoCode/pool"),
    (
        "CreateAndIssuePromoCode",
        {"promoCode": {"pool": {"ids": {"externalId": "spring-2025"}}}},
        "/promoCode/ids",
    ),
    ("CreateAndIssuePromoCode", by_value("BRAND-NEW"), "/promoCode/pool"),
    ("CreateSpringPromoCode", by_value("BRAND-NEW", pool="spring-2025"), "/promoCode/pool"),
    ("CreateSpringPromoCode", {"customer": {"ids": {"webSiteUserId": "1"}}}, "/promoCode/ids"),
    ("IssuePromoCodeFromPool", {"customer": {"ids": {"webSiteUserId": "1"}}}, "/promoCode/pool"),
    ("IssuePromoCodeFromPool", {**by_value("SPRING-7KQ3", pool="spring-2025")}, "/promoCode/ids"),
    ("IssueSpringPromoCode", from_pool(), "/promoCode/pool"),  # the step fixes the pool
    ("IssueSpringPromoCode", by_value("SPRING-7KQ3"), "/promoCode/ids"),
    ("RedeemPromoCode", {"customer": {"ids": {"webSiteUserId": "1"}}}, "/promoCode/ids"),
]


@pytest.mark.parametrize(("operation", "body", "location"), TABLE)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_each_cell_of_the_table_is_a_validation_error_naming_the_field(
    demo: Stores, operation: str, body: dict[str, Any], location: str, fmt: str
) -> None:
    before = sorted(issued_values(demo) + issued_values(demo, "welcome"))

    status, answer, _ = call(operation, body, fmt=fmt)

    assert status == 200
    assert answer["status"] == "ValidationError"
    assert location in [m["location"] for m in answer["validationMessages"]]
    assert sorted(issued_values(demo) + issued_values(demo, "welcome")) == before
    assert demo.codes.get("demo", "BRAND-NEW") is None


def test_validation_errors_in_xml_have_mindboxs_shape(demo: Stores) -> None:
    _, _, text = call(
        "IssuePromoCodeByValue", {"customer": {"ids": {"webSiteUserId": "1"}}}, fmt="xml"
    )

    root = etree.fromstring(text.encode())
    assert root.findtext("status") == "ValidationError"
    message = root.find("validationMessages/validationMessage")
    assert message is not None
    assert [child.tag for child in message] == ["message", "location"]


def test_an_invalid_date_is_a_validation_error_at_its_location(demo: Stores) -> None:
    _, answer, _ = call("IssueSpringPromoCode", {"executionDateTimeUtc": "22.06.2025"})

    assert answer["status"] == "ValidationError"
    assert answer["validationMessages"][0]["location"] == "/executionDateTimeUtc"


# ---------------------------------------------------------------- protocol errors and auth


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<operation><customer>", "application/xml"),
        (b"{not json", "application/json"),
        (b"[]", "application/json"),
        (b"<order/>", "application/xml"),
        (b"hello", "text/plain"),
    ],
)
def test_malformed_bodies_are_protocol_errors_with_message_and_id(
    demo: Stores, body: bytes, content_type: str
) -> None:
    status, answer, _ = call("IssueSpringPromoCode", body, fmt=content_type.split("/")[1])

    assert status == 400
    assert answer["status"] == "ProtocolError"
    assert answer["errorMessage"]
    assert len(answer["errorId"]) == 36
    assert int(answer["httpStatusCode"]) == 400


def test_an_unknown_operation_is_answered_as_mindbox_does(demo: Stores) -> None:
    status, answer, _ = call("NoSuchOperation", from_pool())

    assert status == 400
    assert answer["status"] == "ProtocolError"
    assert answer["errorMessage"] == "Operation NoSuchOperation not found"


@pytest.mark.parametrize(
    ("query", "authorization"),
    [
        ({"endpointId": "no-such-endpoint"}, f"SecretKey {KEY}"),
        ({}, None),
        ({}, "SecretKey wrong"),
        ({}, f"Bearer {KEY}"),
        ({}, f'Mindbox secretKey="{KEY}x"'),
    ],
    ids=["unknown endpoint", "no key", "wrong key", "wrong scheme", "wrong legacy key"],
)
def test_bad_credentials_are_401_protocol_errors_and_issue_nothing(
    demo: Stores, query: dict[str, str], authorization: str | None
) -> None:
    status, answer, _ = call(
        "IssueSpringPromoCode", customer(), query=query, authorization=authorization
    )

    assert status == 401
    assert answer["status"] == "ProtocolError"
    assert "promoCode" not in answer
    assert issued_values(demo) == []


def test_both_header_forms_and_both_endpoint_names_are_accepted(demo: Stores) -> None:
    legacy = call("IssueSpringPromoCode", customer(), authorization=f'Mindbox secretKey="{KEY}"')
    old_name = call(
        "IssueSpringPromoCode", customer(), query={"endpoint": "demo-website", "endpointId": ""}
    )

    assert legacy[1]["promoCode"]["issueStatus"] == "Issued"
    assert old_name[1]["promoCode"]["issueStatus"] == "Issued"


def test_the_answer_format_follows_accept_then_content_type(demo: Stores) -> None:
    _, _, xml_for_xml = call("IssueSpringPromoCode", {}, fmt="xml")
    _, _, json_for_xml = call("IssueSpringPromoCode", {}, fmt="xml", accept="application/json")
    _, _, xml_for_json = call("IssueSpringPromoCode", {}, fmt="json", accept="application/xml")

    assert xml_for_xml.startswith("<?xml")
    assert json.loads(json_for_xml)["status"] == "Success"
    assert xml_for_json.startswith("<?xml")


# ---------------------------------------------------------------- redeem and a full promoCode


def test_redeem_marks_the_code_used_and_issue_then_shows_every_field(demo: Stores) -> None:
    window = {
        "availableFromDateTimeUtc": "2024-01-01 00:00:00.000",
        "availableTillDateTimeUtc": "2040-01-01 00:00:00.000",
    }
    call("CreateSpringPromoCode", by_value("FULL-1", **window))

    _, redeemed, _ = call("RedeemPromoCode", {**by_value("FULL-1"), "pointOfContact": "till-7"})
    _, again, _ = call("RedeemPromoCode", by_value("FULL-1"))
    _, full, _ = call("IssuePromoCodeByValue", by_value("FULL-1"))

    assert redeemed["status"] == "Success"
    assert redeemed["promoCode"]["isUsed"] is True
    assert redeemed["promoCode"]["usedPointOfContact"]["ids"]["externalId"] == "till-7"
    assert again["status"] == "ValidationError"
    code = full["promoCode"]
    assert code["issueStatus"] == "NotAvailableForIssue"
    for field in (
        "ids",
        "pool",
        "availableFromDateTimeUtc",
        "availableTillDateTimeUtc",
        "isUsed",
        "usedPointOfContact",
        "usedDateTimeUtc",
        "issuedPointOfContact",
        "issuedDateTimeUtc",
    ):
        assert field in code, field


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (
            {
                "availableFromDateTimeUtc": "2024-01-01 00:00:00.000",
                "availableTillDateTimeUtc": "2024-02-01 00:00:00.000",
            },
            "Promo code has expired.",
        ),
        ({"availableFromDateTimeUtc": "2039-01-01 00:00:00.000"}, "Promo code is not valid yet."),
    ],
    ids=["expired", "not-yet-valid"],
)
def test_redeem_outside_the_codes_validity_says_so_and_changes_nothing(
    demo: Stores, window: dict[str, str], message: str
) -> None:
    """Issue 15 item 8: such a redeem said "used, blocked or deleted"."""
    value = "WINDOW-" + message.split()[-1].rstrip(".").upper()
    demo.codes.add(
        "demo",
        {"spring": _spring(demo)},
        [NewCode("spring", value, _window(window))],
        ACTOR,
    )

    _, json_answer, _ = call("RedeemPromoCode", by_value(value))
    _, xml_answer, _ = call("RedeemPromoCode", by_value(value), fmt="xml")

    for answer in (json_answer, xml_answer):
        assert answer["status"] == "ValidationError"
        (entry,) = answer["validationMessages"]
        assert entry["message"] == message
        assert entry["location"] == "/promoCode/ids/value"
    code = demo.codes.get("demo", value)
    assert code is not None
    assert code.used_at is None


def test_redeem_of_a_used_code_inside_its_validity_still_says_used(demo: Stores) -> None:
    call("RedeemPromoCode", by_value("SPRING-HN62"))

    _, again, _ = call("RedeemPromoCode", by_value("SPRING-HN62"))

    assert again["validationMessages"][0]["message"] == (
        "Promo code cannot be redeemed: it is used, blocked or deleted."
    )


def _spring(stores: Stores) -> Any:
    pool = stores.catalog.get_pool("demo", "spring")
    assert pool is not None
    return pool


def _window(fields: dict[str, str]) -> Window:
    return Window(
        *(
            clock.parse_maestra(fields[name], name) if name in fields else None
            for name in ("availableFromDateTimeUtc", "availableTillDateTimeUtc")
        )
    )


def test_a_blocked_code_shows_when_it_was_blocked(demo: Stores) -> None:
    # A used code cannot be blocked, so blockedDateTimeUtc is shown on its own code.
    demo.codes.block("demo", "SPRING-P9TW", clock.now(), ACTOR)

    _, body, _ = call("IssuePromoCodeByValue", by_value("SPRING-P9TW"))

    assert body["promoCode"]["issueStatus"] == "NotAvailableForIssue"
    assert body["promoCode"]["blockedDateTimeUtc"]


# ---------------------------------------------------------------- transactionId


def test_the_same_transaction_id_and_body_returns_the_same_code_and_issues_nothing_new(
    demo: Stores,
) -> None:
    first = call("IssueSpringPromoCode", customer(), query={"transactionId": "tx-1"})[1]
    again = call("IssueSpringPromoCode", customer(), query={"transactionId": "tx-1"})[1]

    assert again["promoCode"]["ids"] == first["promoCode"]["ids"]
    assert again["promoCode"]["issueStatus"] == "Issued"
    assert len(issued_values(demo)) == 1


def test_the_same_transaction_id_with_another_body_is_refused(demo: Stores) -> None:
    call("IssueSpringPromoCode", customer("1"), query={"transactionId": "tx-2"})

    status, answer, _ = call("IssueSpringPromoCode", customer("2"), query={"transactionId": "tx-2"})

    assert status == 400
    assert answer["status"] == "ProtocolError"
    assert len(issued_values(demo)) == 1


def test_without_a_transaction_id_every_call_stands_alone(demo: Stores) -> None:
    call("IssueSpringPromoCode", customer())
    call("IssueSpringPromoCode", customer())

    assert len(issued_values(demo)) == 2


def test_a_retry_after_the_first_attempt_wrote_but_never_answered_replays_it(
    demo: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promo.protocols import maestra

    real_success = maestra.success

    def lose_the_answer(*args: Any) -> dict[str, Any]:
        raise RuntimeError("connection reset after the write")

    monkeypatch.setattr(maestra, "success", lose_the_answer)
    status, failed, _ = call("IssueSpringPromoCode", customer(), query={"transactionId": "tx-3"})
    monkeypatch.setattr(maestra, "success", real_success)
    _, retried, _ = call("IssueSpringPromoCode", customer(), query={"transactionId": "tx-3"})

    assert status == 500
    assert failed["status"] == "InternalServerError"
    assert retried["promoCode"]["issueStatus"] == "Issued"
    assert issued_values(demo) == [retried["promoCode"]["ids"]["value"]]


def test_concurrent_retries_of_one_transaction_issue_exactly_one_code(demo: Stores) -> None:
    start = threading.Barrier(8)

    def attempt(_: int) -> str:
        start.wait()
        return str(
            call("IssueSpringPromoCode", customer(), query={"transactionId": "tx-race"})[1][
                "promoCode"
            ]["ids"]["value"]
        )

    with ThreadPoolExecutor(8) as executor:
        values = set(executor.map(attempt, range(8)))

    assert len(values) == 1
    assert issued_values(demo) == list(values)


# ---------------------------------------------------------------- async


@pytest.fixture
def queued(demo: Stores) -> Any:
    messages: list[dict[str, Any]] = []
    use_sender(messages.append)
    yield messages
    use_sender(None)


def deliver(message: dict[str, Any], message_id: str = "m-1") -> dict[str, Any]:
    sqs = {
        "Records": [
            {"messageId": message_id, "body": json.dumps(message), "eventSource": "aws:sqs"}
        ]
    }
    return invoke(worker_handler, sqs, "worker")


def test_async_answers_success_at_once_and_the_worker_issues_exactly_once(
    demo: Stores, queued: list[dict[str, Any]]
) -> None:
    status, answer, _ = call(
        "IssueSpringPromoCode", customer(), path="/v3/operations/async", handler=async_handler
    )

    assert (status, answer) == (200, {"status": "Success"})
    assert issued_values(demo) == []
    assert len(queued) == 1
    assert "demo-maestra-secret-key" not in json.dumps(queued[0])

    assert deliver(queued[0]) == {"batchItemFailures": []}
    assert deliver(queued[0], "m-1-redelivered") == {"batchItemFailures": []}  # SQS redelivery
    assert len(issued_values(demo)) == 1


def test_async_refuses_a_broken_request_at_once_and_queues_nothing(
    demo: Stores, queued: list[dict[str, Any]]
) -> None:
    _, answer, _ = call(
        "IssueSpringPromoCode", customer(), path="/v3/operations/async", handler=async_handler
    )
    _, invalid, _ = call(
        "IssuePromoCodeByValue", {}, path="/v3/operations/async", handler=async_handler
    )

    assert answer["status"] == "Success"
    assert invalid["status"] == "ValidationError"
    assert len(queued) == 1


def test_async_worker_failures_are_retried_and_still_issue_exactly_once(
    demo: Stores, queued: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from promo.domain.errors import StoreUnavailable
    from promo.services import issuing as services_module

    call(
        "IssueSpringPromoCode",
        customer(),
        path="/v3/operations/async",
        handler=async_handler,
        query={"transactionId": "tx-async"},
    )
    real = services_module.perform_step
    attempts: list[str] = []

    def fail_after_the_write(svc: Any, step: Any) -> Any:
        outcome = real(svc, step)
        attempts.append("wrote")
        if len(attempts) == 1:
            raise StoreUnavailable("timed out after the write")
        return outcome

    monkeypatch.setattr(services_module, "perform_step", fail_after_the_write)
    first = deliver(queued[0])
    second = deliver(queued[0])

    assert first == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert second == {"batchItemFailures": []}
    assert len(issued_values(demo)) == 1


def queue_at(url: str | None) -> QueueSender:
    """The SQS sender a function builds when its ASYNC_QUEUE_URL is ``url``."""
    settings = services().settings.model_copy(update={"async_queue_url": url})
    return QueueSender(settings, aws.get_session())


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_async_without_a_queue_says_so_in_a_protocol_error_and_does_nothing(
    demo: Stores, fmt: str
) -> None:
    use_sender(queue_at(None))  # sam local: config/sam-local.json leaves the URL empty
    query = {"transactionId": "tx-no-queue"}

    status, answer, _ = call(
        "IssueSpringPromoCode",
        customer(),
        fmt=fmt,
        path="/v3/operations/async",
        handler=async_handler,
        query=query,
    )

    assert status == 400
    assert answer["status"] == "ProtocolError"
    assert str(answer["httpStatusCode"]) == "400"
    assert "need the stack's SQS queue" in answer["errorMessage"]
    assert "nothing was done" in answer["errorMessage"]
    assert "/v3/operations/sync" in answer["errorMessage"]
    assert issued_values(demo) == []
    # No receipt was written either: sync performs the same transaction afresh.
    _, performed, _ = call("IssueSpringPromoCode", customer(), query=query)
    assert performed["promoCode"]["issueStatus"] == "Issued"


def test_async_whose_queue_refuses_the_message_answers_500_for_the_client_to_retry(
    demo: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = queue_at("https://sqs.eu-west-1.amazonaws.com/000000000000/promo-async")

    class SqsDown:
        def send_message(self, **_: Any) -> None:
            raise ConnectionError("SQS unreachable")

    monkeypatch.setattr(sender, "_sqs", SqsDown)
    use_sender(sender)

    status, answer, _ = call(
        "IssueSpringPromoCode", customer(), path="/v3/operations/async", handler=async_handler
    )

    assert (status, answer["status"]) == (500, "InternalServerError")
    assert issued_values(demo) == []


# ---------------------------------------------------------------- multi-use, limits, rollback


def redeem_body(value: str, user: str = "42") -> dict[str, Any]:
    return {"customer": {"ids": {"webSiteUserId": user}}, "promoCode": {"ids": {"value": value}}}


def test_a_multi_use_code_is_redeemed_five_times_then_refused_and_is_used_only_at_the_last(
    demo: Stores,
) -> None:
    answers = [call("RedeemPromoCode", redeem_body("PARTY-5USE-A1", str(n)))[1] for n in range(6)]

    assert [a["status"] for a in answers[:5]] == ["Success"] * 5
    assert [a["promoCode"]["isUsed"] for a in answers[:5]] == [False] * 4 + [True]
    assert answers[5]["status"] == "ValidationError"
    assert answers[5]["validationMessages"][0]["location"] == "/promoCode/ids/value"


def test_a_limited_pool_issues_one_code_per_customer_and_answers_not_available_for_issue(
    demo: Stores,
) -> None:
    first = call("IssueFirstOrderCode", customer("7"))[1]
    again = call("IssueFirstOrderCode", customer("7"))[1]
    other = call("IssueFirstOrderCode", customer("8"))[1]

    assert first["promoCode"]["issueStatus"] == "Issued"
    assert again["status"] == "Success"
    assert again["promoCode"]["issueStatus"] == "NotAvailableForIssue"
    assert other["promoCode"]["issueStatus"] == "Issued"
    assert len(issued_values(demo, "first-order")) == 2


def test_rollback_redemption_gives_a_use_back_and_a_retry_with_its_transaction_id_replays_it(
    demo: Stores,
) -> None:
    assert call("RedeemPromoCode", redeem_body("SPRING-7KQ3"))[1]["promoCode"]["isUsed"] is True
    query = {"transactionId": "rollback-1"}

    status, rolled, _ = call("RollbackRedemption", redeem_body("SPRING-7KQ3"), query=query)
    retried = call("RollbackRedemption", redeem_body("SPRING-7KQ3"), query=query)[1]
    nothing = call("RollbackRedemption", redeem_body("SPRING-7KQ3"))[1]

    assert status == 200
    assert rolled["status"] == "Success"
    assert rolled["promoCode"]["isUsed"] is False
    assert "issueStatus" not in rolled["promoCode"]
    assert retried == rolled
    assert nothing["status"] == "ValidationError"
    assert (
        nothing["validationMessages"][0]["message"] == "Promo code has no redemption to roll back."
    )
    code = demo.codes.get("demo", "SPRING-7KQ3")
    assert code is not None
    assert code.state is CodeState.ISSUED


def test_a_reserved_code_is_refused_to_others_and_redeemed_by_its_holder_through_maestra(
    demo: Stores,
) -> None:
    held = call("ReservePromoCode", redeem_body("SPRING-7KQ3", "42"))[1]
    others = call("RedeemPromoCode", redeem_body("SPRING-7KQ3", "43"))[1]
    again = call("ReservePromoCode", redeem_body("SPRING-7KQ3", "43"))[1]
    redeemed = call("RedeemPromoCode", redeem_body("SPRING-7KQ3", "42"))[1]

    assert held["status"] == "Success"
    assert held["promoCode"]["isUsed"] is False
    assert "issueStatus" not in held["promoCode"]
    assert others["status"] == "ValidationError"
    assert others["validationMessages"][0]["message"] == (
        "Promo code's remaining uses are held for other customers."
    )
    assert again["validationMessages"][0]["message"] == (
        "Promo code has no use free to hold: it is used, held, blocked or deleted."
    )
    assert redeemed["status"] == "Success"
    assert redeemed["promoCode"]["isUsed"] is True


def test_a_release_gives_the_held_use_back_and_a_second_release_is_refused(
    demo: Stores,
) -> None:
    call("ReservePromoCode", redeem_body("SPRING-7KQ3", "42"))
    released = call("ReleasePromoCode", redeem_body("SPRING-7KQ3", "42"))[1]
    twice = call("ReleasePromoCode", redeem_body("SPRING-7KQ3", "42"))[1]
    redeemed = call("RedeemPromoCode", redeem_body("SPRING-7KQ3", "43"))[1]

    assert released["status"] == "Success"
    assert twice["validationMessages"][0]["message"] == (
        "No use of this promo code is held for this customer."
    )
    assert redeemed["promoCode"]["isUsed"] is True
    code = demo.codes.get("demo", "SPRING-7KQ3")
    assert code is not None
    assert code.used_by == "43"


def test_reserve_and_release_name_the_customer_they_hold_for(demo: Stores) -> None:
    body = {"promoCode": {"ids": {"value": "SPRING-7KQ3"}}}

    answers = [call(operation, body)[1] for operation in ("ReservePromoCode", "ReleasePromoCode")]

    for answer in answers:
        assert answer["status"] == "ValidationError"
        assert answer["validationMessages"] == [
            {
                "message": "Field is mandatory for this operation.",
                "location": "/customer/ids/webSiteUserId",
            }
        ]


# ---------------------------------------------------------------- a case-insensitive tenant


def test_in_a_case_insensitive_tenant_any_spelling_issues_redeems_and_rolls_back_the_code_as_added(
    demo: Stores,
) -> None:
    # config/demo.yaml: tenant demo has case_sensitive: false.
    issued = call("IssuePromoCodeByValue", by_value("spring-7kq3"), fmt="xml")[1]
    redeemed = call("RedeemPromoCode", redeem_body("Spring-7Kq3"))[1]
    rolled = call("RollbackRedemption", redeem_body("sPRING-7KQ3"))[1]

    assert issued["promoCode"]["issueStatus"] == "Issued"
    assert issued["promoCode"]["ids"]["value"] == "SPRING-7KQ3"
    assert (redeemed["status"], redeemed["promoCode"]["isUsed"]) == ("Success", True)
    assert redeemed["promoCode"]["ids"]["value"] == "SPRING-7KQ3"
    assert (rolled["status"], rolled["promoCode"]["isUsed"]) == ("Success", False)
    assert rolled["promoCode"]["ids"]["value"] == "SPRING-7KQ3"


def test_in_a_case_insensitive_tenant_create_and_issue_of_a_case_variant_creates_no_second_code(
    demo: Stores,
) -> None:
    created = call("CreateSpringPromoCode", by_value("Autumn-Fresh-1"))[1]
    variant = call("CreateSpringPromoCode", by_value("AUTUMN-FRESH-1"))[1]
    held = call("CreateSpringPromoCode", by_value("spring-m4xr"))[1]

    assert created["promoCode"]["issueStatus"] == "Issued"
    assert created["promoCode"]["ids"]["value"] == "Autumn-Fresh-1"
    assert variant["promoCode"]["issueStatus"] == "NotAvailableForIssue"
    assert variant["promoCode"]["ids"]["value"] == "Autumn-Fresh-1"
    assert held["promoCode"]["ids"]["value"] == "SPRING-M4XR"
    values = [code.value for _, code in demo.codes.list("demo", ["spring"])]
    assert "AUTUMN-FRESH-1" not in values
    assert "spring-m4xr" not in values
