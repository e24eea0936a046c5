"""SyncTV REST v1: an offer's promo codes (index, show, create), promo_codes/validate and the
REST Session handshake. The spec page's examples are fixtures; every bound at its edge; every
code state through validate; sessions missing, expired, ended and without admin rights."""

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from lxml import etree

import promo.protocols.synctv.requests
import promo.services.listing
import promo.services.pools
import promo.services.validation
from functions.mews_get_all.app import handler as mews_get_all_handler
from functions.synctv_create.app import handler as create_handler
from functions.synctv_index.app import handler as index_handler
from functions.synctv_login.app import handler as login_handler
from functions.synctv_logout.app import handler as logout_handler
from functions.synctv_show.app import handler as show_handler
from functions.synctv_validate.app import handler as validate_handler
from promo.codecs import xml
from promo.domain import clock
from promo.domain.codegen import DEFAULT_ALPHABET, CodeGenerator
from promo.domain.credentials import Session
from promo.domain.errors import StoreUnavailable
from promo.domain.models import Code, Issuance, NewCode, Pool, Recipient, Window
from promo.secret_hashing import token_digest
from promo.services import Services
from promo.services.tenants import put_tenant
from tests.support.builders import ACTOR, NO_WAIT, moment, tenant
from tests.support.deployment import FIXTURES, cold_start, event, invoke, json_body, post_json
from tests.support.seed import SPEC_TOKEN
from tests.support.synctv import (
    DEMO_ADMIN,
    DEMO_DEVICE,
    DEMO_VIEWER,
    OTHER_ADMIN,
    OTHER_CODE,
    OTHER_DEVICE,
    SPRING_OFFER,
    SPRING_VOUCHER,
    WELCOME_OFFER,
    Login,
    seed_synctv,
    synctv_event,
    with_session,
)
from tests.support.tables import Stores
from tools.router import Router

pytestmark = pytest.mark.integration

SESSION = "/rest/v1/session"
VALIDATE = "/rest/v1/promo_codes/validate"
INDEX_KEY = "GET /rest/v1/offers/{offer_id}/promo_codes"
SHOW_KEY = "GET /rest/v1/offers/{offer_id}/promo_codes/{id}"
CREATE_KEY = "POST /rest/v1/offers/{offer_id}/promo_codes"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
INTEGER = re.compile(r"^-?\d+$")
GENERATED = re.compile(f"^[{DEFAULT_ALPHABET}]+$")

Answer = tuple[int, etree._Element]


@pytest.fixture
def svc(deployed: Stores) -> Services:
    return seed_synctv()


# ---------------------------------------------------------------- calling the handlers


def answer(response: dict[str, Any]) -> Answer:
    assert response["headers"]["content-type"] == "application/xml; charset=utf-8"
    return response["statusCode"], xml.parse(response["body"].encode())


def code_of(root: etree._Element) -> int:
    return int(xml.child_text(root, "response/code") or "0")


def login_response(
    who: Login = DEMO_ADMIN, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    body = urlencode({"email": who.email, "password": who.password}).encode()
    form = {"content-type": "application/x-www-form-urlencoded", **(headers or {})}
    return invoke(
        login_handler, synctv_event("POST", SESSION, f"POST {SESSION}", body=body, headers=form)
    )


def login(who: Login = DEMO_ADMIN) -> str:
    response = login_response(who)
    assert response["statusCode"] == 200, response["body"]
    (cookie,) = response["cookies"]
    return str(cookie.split(";")[0].split("=", 1)[1])


def logout(session: str | None) -> dict[str, Any]:
    return invoke(
        logout_handler, synctv_event("DELETE", SESSION, f"DELETE {SESSION}", session=session)
    )


def index(session: str | None, offer: int | str = SPRING_OFFER, **query: str) -> Answer:
    path = f"/rest/v1/offers/{offer}/promo_codes"
    request = synctv_event("GET", path, INDEX_KEY, query, {"offer_id": str(offer)}, session)
    return answer(invoke(index_handler, request))


def show(session: str | None, number: int | str, offer: int | str = SPRING_OFFER) -> Answer:
    path = f"/rest/v1/offers/{offer}/promo_codes/{number}"
    parameters = {"offer_id": str(offer), "id": str(number)}
    return answer(
        invoke(show_handler, synctv_event("GET", path, SHOW_KEY, None, parameters, session))
    )


def create(session: str | None, offer: int | str = WELCOME_OFFER, **query: str) -> Answer:
    path = f"/rest/v1/offers/{offer}/promo_codes"
    request = synctv_event("POST", path, CREATE_KEY, query, {"offer_id": str(offer)}, session)
    return answer(invoke(create_handler, request))


def validate(code: str, device: str | None = DEMO_DEVICE, session: str | None = None) -> Answer:
    query = {"code": code} | ({"device": device} if device is not None else {})
    request = synctv_event("GET", VALIDATE, f"GET {VALIDATE}", query, None, session)
    return answer(invoke(validate_handler, request))


def listed(root: etree._Element) -> list[dict[str, str]]:
    codes = root.find("promo_codes")
    assert codes is not None
    return [{str(field.tag): field.text or "" for field in node} for node in codes]


def pool_of(svc: Services, offer: int, tenant_id: str = "demo") -> Pool:
    return promo.services.pools.find_pool(svc, tenant_id, "synctv", str(offer))


def codes_of(svc: Services, offer: int, tenant_id: str = "demo") -> list[Code]:
    pool = pool_of(svc, offer, tenant_id)
    return [code for _, code in svc.codes.list(tenant_id, [pool.pool_id])]


def redeem(svc: Services, value: str, used_by: str) -> Code:
    return svc.codes.redeem(
        "demo",
        value,
        Issuance(moment(), ACTOR, recipient=Recipient("maestra.webSiteUserId", used_by)),
    )


# ---------------------------------------------------------------- comparing with the spec


def fixture_xml(name: str) -> etree._Element:
    return xml.parse((FIXTURES / "synctv" / name).read_bytes())


def kind(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        return "empty"
    if INTEGER.match(text):
        return "integer"
    return "timestamp" if ISO_Z.match(text) else "text"


def shape(node: etree._Element) -> Any:
    """Tags in order, attributes, and for each leaf the type of its text."""
    children = [child for child in node if isinstance(child.tag, str)]
    content = [shape(child) for child in children] if children else kind(node.text)
    return (node.tag, {str(k): str(v) for k, v in node.attrib.items()}, content)


def content(node: etree._Element) -> Any:
    """Tags in order, attributes and texts, whitespace between elements ignored."""
    children = [child for child in node if isinstance(child.tag, str)]
    inside = [content(child) for child in children] if children else (node.text or "").strip()
    return (node.tag, {str(k): str(v) for k, v in node.attrib.items()}, inside)


def assert_error(status: int, root: etree._Element, code: int, http_status: int = 400) -> None:
    assert (status, code_of(root)) == (http_status, code)
    assert [child.tag for child in root] == ["response", "version"]
    assert [child.tag for child in root.find("response")] == ["count", "code", "message"]  # type: ignore[union-attr]
    message = xml.child_text(root, "response/message") or ""
    assert message
    assert "Traceback" not in message
    assert xml.child_text(root, "version") == "0.5"


# ---------------------------------------------------------------- the spec page's examples


def test_spec_index_example_lists_consumed_codes_in_the_spec_shape(svc: Services) -> None:
    first, second, *_ = reversed(codes_of(svc, SPRING_OFFER))
    redeem(svc, first.value, "2365")
    redeem(svc, second.value, "2366")
    spec = fixture_xml("index.response.xml")

    status, root = answer(invoke(index_handler, with_session(event("synctv_index"), login())))

    assert status == 200
    assert [child.tag for child in root] == [child.tag for child in spec]
    assert shape(root.find("response")) == shape(spec.find("response"))  # type: ignore[arg-type]
    codes = root.find("promo_codes")
    assert codes is not None
    assert dict(codes.attrib.items()) == {"type": "array"}
    spec_code = shape(spec.find("promo_codes/promo_code"))  # type: ignore[arg-type]
    assert [shape(node) for node in codes] == [spec_code, spec_code]
    for path in ("response/code", "response/message", "version"):
        assert xml.child_text(root, path) == xml.child_text(spec, path)
    assert xml.child_text(root, "response/count") == "2"
    rows = listed(root)
    assert {(r["code"], r["consumed_by"]) for r in rows} == {
        (first.value, "2365"),
        (second.value, "2366"),
    }
    assert {r["offer_id"] for r in rows} == {"2"}
    assert {int(r["id"]) for r in rows} == {first.number, second.number}


def test_spec_show_example_answers_one_code_in_the_spec_shape(svc: Services) -> None:
    code = codes_of(svc, SPRING_OFFER)[0]
    redeem(svc, code.value, "2365")
    spec = fixture_xml("show.response.xml")
    request = with_session(event("synctv_show"), login())
    request["pathParameters"]["id"] = str(code.number)

    status, root = answer(invoke(show_handler, request))

    assert status == 200
    assert shape(root) == shape(spec)
    for path in ("response/count", "response/code", "response/message", "version"):
        assert xml.child_text(root, path) == xml.child_text(spec, path)
    assert xml.child_text(root, "promo_code/id") == str(code.number)
    assert xml.child_text(root, "promo_code/code") == code.value
    assert xml.child_text(root, "promo_code/offer_id") == "2"
    assert xml.child_text(root, "promo_code/consumed_by") == "2365"
    assert xml.child_text(root, "promo_code/created_at") == clock.format_iso8601(
        code.audit.created_at
    )


def test_spec_show_example_as_printed_names_no_code_of_ours(svc: Services) -> None:
    status, root = answer(invoke(show_handler, with_session(event("synctv_show"), login())))

    assert_error(status, root, -4)  # the demo tenant has 13 codes; none is number 31


def test_spec_create_example_generates_ten_codes_of_eight_characters(svc: Services) -> None:
    before = {code.value for code in codes_of(svc, WELCOME_OFFER)}

    status, root = answer(invoke(create_handler, with_session(event("synctv_create"), login())))

    assert status == 200
    assert content(root) == content(fixture_xml("create.response.xml"))
    new = [code for code in codes_of(svc, WELCOME_OFFER) if code.value not in before]
    assert len(new) == 10
    assert all(len(code.value) == 8 and GENERATED.match(code.value) for code in new)


def test_spec_validate_example_answers_1_for_a_redeemable_code_and_minus_45_for_its_value(
    svc: Services,
) -> None:
    spec = fixture_xml("validate.response.xml")
    as_printed = event("synctv_validate")

    status, unknown = answer(invoke(validate_handler, as_printed))
    assert status == 200
    assert shape(unknown) == shape(spec)
    assert code_of(unknown) == -45  # 1A2B3C is not a code of the demo tenant

    as_printed["queryStringParameters"]["code"] = "SPRING-7KQ3"
    status, valid = answer(invoke(validate_handler, as_printed))
    assert status == 200
    assert content(valid) == content(spec)


# ---------------------------------------------------------------- REST Session


def test_login_sets_an_http_only_session_cookie_for_the_configured_lifetime(
    svc: Services,
) -> None:
    response = login_response()

    status, root = answer(response)
    assert (status, code_of(root)) == (200, 1)
    (cookie,) = response["cookies"]
    name_value, *attributes = cookie.split("; ")
    assert name_value.startswith("_synctv_session=")
    assert len(name_value) > len("_synctv_session=") + 30
    assert set(attributes) == {"Path=/rest/v1", "Max-Age=3600", "HttpOnly", "SameSite=Lax"}


def test_the_cookie_is_secure_behind_https(svc: Services) -> None:
    response = login_response(headers={"x-forwarded-proto": "https"})

    assert response["cookies"][0].endswith("; Secure")


def test_the_stored_login_event_logs_in_the_demo_admin(svc: Services) -> None:
    response = invoke(login_handler, event("synctv_login"))

    assert response["statusCode"] == 200
    assert response["cookies"][0].startswith("_synctv_session=")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            b"username=admin%40demo.example&password=demo-synctv-password",
            "application/x-www-form-urlencoded",
        ),
        (
            b"<session><email>admin@demo.example</email><password>demo-synctv-password</password></session>",
            "application/xml",
        ),
        (
            b"session%5Bemail%5D=admin%40demo.example&session%5Bpassword%5D=demo-synctv-password",
            "application/x-www-form-urlencoded",
        ),
    ],
    ids=["username alias", "XML body", "Rails nested form"],
)
def test_login_accepts_the_username_alias_an_xml_body_and_rails_nested_names(
    svc: Services, body: bytes, content_type: str
) -> None:
    request = synctv_event(
        "POST", SESSION, f"POST {SESSION}", body=body, headers={"content-type": content_type}
    )

    response = invoke(login_handler, request)

    assert response["statusCode"] == 200
    token = response["cookies"][0].split(";")[0].split("=", 1)[1]
    assert index(token)[0] == 200


def test_login_in_the_query_string_works_too(svc: Services) -> None:
    query = {"email": DEMO_ADMIN.email, "password": DEMO_ADMIN.password}
    request = synctv_event("POST", SESSION, f"POST {SESSION}", query)

    assert invoke(login_handler, request)["statusCode"] == 200


def test_a_wrong_password_and_an_unknown_user_get_the_same_refusal_and_no_cookie(
    svc: Services,
) -> None:
    wrong = login_response(Login(DEMO_ADMIN.email, "not-the-password"))
    unknown = login_response(Login("nobody@demo.example", DEMO_ADMIN.password))

    for response in (wrong, unknown):
        assert_error(*answer(response), -10)
        assert "cookies" not in response
    assert wrong["body"] == unknown["body"]


@pytest.mark.parametrize(
    "fields",
    [
        {"email": DEMO_ADMIN.email},
        {"password": DEMO_ADMIN.password},
        {"email": "", "password": "x"},
    ],
    ids=["no password", "no email", "empty email"],
)
def test_login_without_email_or_password_is_an_argument_error(
    svc: Services, fields: dict[str, str]
) -> None:
    request = synctv_event(
        "POST",
        SESSION,
        f"POST {SESSION}",
        body=urlencode(fields).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert_error(*answer(invoke(login_handler, request)), -2)


@pytest.mark.parametrize(
    "body",
    [b"<session><email>x</email>", b'<!DOCTYPE s [<!ENTITY e "x">]><session>&e;</session>'],
    ids=["malformed", "entity"],
)
def test_a_malformed_or_hostile_xml_login_is_refused(svc: Services, body: bytes) -> None:
    request = synctv_event(
        "POST", SESSION, f"POST {SESSION}", body=body, headers={"content-type": "text/xml"}
    )

    response = invoke(login_handler, request)

    assert_error(*answer(response), -2)
    assert "cookies" not in response


def test_only_the_hash_of_a_session_token_is_stored(svc: Services, deployed: Stores) -> None:
    token = login()

    items = deployed.client.scan(TableName=deployed.table_name)["Items"]

    assert token not in repr(items)
    assert any(token_digest(token) in item["pk"]["S"] for item in items)


def test_logout_ends_the_session_and_expires_the_cookie(svc: Services) -> None:
    token = login()
    assert index(token)[0] == 200

    response = logout(token)

    status, root = answer(response)
    assert (status, code_of(root)) == (200, 1)
    (cookie,) = response["cookies"]
    assert cookie.startswith("_synctv_session=;")
    assert "Max-Age=0" in cookie
    assert_error(*index(token), -10)


def test_logout_without_a_session_still_succeeds(svc: Services) -> None:
    status, root = answer(logout(None))

    assert (status, code_of(root)) == (200, 1)


def test_logout_ends_only_its_own_session(svc: Services) -> None:
    mine, theirs = login(), login()

    logout(mine)

    assert code_of(index(mine)[1]) == -10
    assert code_of(index(theirs)[1]) == 1


def test_a_session_expires_after_the_configured_lifetime(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold_start(synctv_session_seconds=2)
    response = login_response()
    token = response["cookies"][0].split(";")[0].split("=", 1)[1]
    assert "Max-Age=2" in response["cookies"][0]
    assert index(token)[0] == 200

    time.sleep(2.1)

    assert_error(*index(token), -10)


# ---------------------------------------------------------------- sessions required


def expired_session(svc: Services) -> str:
    session = Session("synctv", "demo", DEMO_ADMIN.email, True, clock.now() - timedelta(seconds=1))
    svc.credentials.start_session("expired-session-token", session)
    return "expired-session-token"


def ended_session(svc: Services) -> str:
    token = login()
    logout(token)
    return token


SESSIONS = {
    "missing": (lambda svc: None, -10),
    "unknown": (lambda svc: "not-a-session-token", -10),
    "expired": (expired_session, -10),
    "ended by logout": (ended_session, -10),
    "not admin": (lambda svc: login(DEMO_VIEWER), -11),
}
OPERATIONS = {
    "index": lambda session: index(session),
    "show": lambda session: show(session, 1),
    "create": lambda session: create(session, count="5"),
}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("session", SESSIONS)
def test_index_show_and_create_need_an_admin_session_and_do_nothing_without_one(
    svc: Services, operation: str, session: str
) -> None:
    make, expected = SESSIONS[session]
    before = len(codes_of(svc, WELCOME_OFFER))

    status, root = OPERATIONS[operation](make(svc))  # type: ignore[no-untyped-call]

    assert_error(status, root, expected)
    assert root.find("promo_codes") is None
    assert root.find("promo_code") is None
    assert len(codes_of(svc, WELCOME_OFFER)) == before


def test_a_refused_session_is_refused_before_its_arguments_are_read(svc: Services) -> None:
    assert_error(*create(None, count="1000"), -10)


# ---------------------------------------------------------------- create


@pytest.mark.parametrize(
    ("count", "expected"), [("0", -2), ("1", 1), ("100", 1), ("101", -2), ("ten", -2), ("", -2)]
)
def test_create_count_is_1_to_100(svc: Services, count: str, expected: int) -> None:
    before = len(codes_of(svc, WELCOME_OFFER))

    status, root = create(login(), count=count)

    assert code_of(root) == expected
    created = len(codes_of(svc, WELCOME_OFFER)) - before
    if expected == 1:
        assert status == 200
        assert created == int(count)
        assert xml.child_text(root, "response/count") == "1"
    else:
        assert_error(status, root, -2)
        assert "count" in (xml.child_text(root, "response/message") or "")
        assert created == 0


@pytest.mark.parametrize(("length", "expected"), [("5", -2), ("6", 1), ("10", 1), ("11", -2)])
def test_create_length_is_6_to_10(svc: Services, length: str, expected: int) -> None:
    before = {code.value for code in codes_of(svc, WELCOME_OFFER)}

    status, root = create(login(), count="3", length=length)

    new = [c.value for c in codes_of(svc, WELCOME_OFFER) if c.value not in before]
    assert code_of(root) == expected
    if expected == 1:
        assert status == 200
        assert [len(value) for value in new] == [int(length)] * 3
    else:
        assert_error(status, root, -2)
        assert "length" in (xml.child_text(root, "response/message") or "")
        assert new == []


def test_create_makes_one_code_of_six_characters_by_default(svc: Services) -> None:
    before = {code.value for code in codes_of(svc, WELCOME_OFFER)}

    status, _ = create(login())

    new = [c.value for c in codes_of(svc, WELCOME_OFFER) if c.value not in before]
    assert status == 200
    assert len(new) == 1
    assert len(new[0]) == 6
    assert GENERATED.match(new[0])
    assert not set(new[0]) & set("01OIl")


def test_created_codes_never_take_a_value_another_protocol_added(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    spring = pool_of(svc, SPRING_OFFER)
    svc.codes.add("demo", {spring.pool_id: spring}, [NewCode(spring.pool_id, "TAKEN7")], ACTOR)
    draws: Iterator[str] = iter(["TAKEN7", "TAKEN7", "FRESH7", "FRESH8"])
    monkeypatch.setattr(CodeGenerator, "_draw", lambda self: next(draws))

    status, _ = create(login(), count="2")

    assert status == 200
    welcome = {code.value for code in codes_of(svc, WELCOME_OFFER)}
    assert {"FRESH7", "FRESH8"} <= welcome
    assert "TAKEN7" not in welcome
    taken = svc.codes.get("demo", "TAKEN7")
    assert taken is not None
    assert taken.pool_id == spring.pool_id


def test_codes_created_through_synctv_are_listed_by_mews_get_all(svc: Services) -> None:
    session = login()
    create(session, offer=SPRING_OFFER, count="3")
    _, root = index(session, limit="3")
    created = {row["code"] for row in listed(root)}

    body = SPEC_TOKEN.body(Limitation={"Count": 100}, VoucherIds=[SPRING_VOUCHER])
    response = invoke(
        mews_get_all_handler, post_json("/api/connector/v1/voucherCodes/getAll", body)
    )

    assert response["statusCode"] == 200
    assert created <= {code["Value"] for code in json_body(response)["VoucherCodes"]}
    assert len(created) == 3


@pytest.mark.parametrize("offer", ["999", "abc"])
def test_an_unknown_offer_is_refused_and_nothing_is_created(svc: Services, offer: str) -> None:
    session = login()
    before = svc.codes.created_count("demo")

    for status, root in (create(session, offer=offer), index(session, offer=offer)):
        assert_error(status, root, -4 if offer.isdigit() else -2)
    assert svc.codes.created_count("demo") == before


def test_an_admin_reaches_only_the_offers_of_their_own_tenant(svc: Services) -> None:
    other = login(OTHER_ADMIN)

    assert_error(*create(other, offer=WELCOME_OFFER), -4)
    status, root = index(other, offer=SPRING_OFFER)
    assert status == 200
    assert [row["code"] for row in listed(root)] == [OTHER_CODE]


# ---------------------------------------------------------------- index


def test_unconsumed_codes_have_empty_consumed_fields(svc: Services) -> None:
    request = with_session(event("synctv_index"), login())
    request["pathParameters"]["offer_id"] = str(WELCOME_OFFER)
    del request["queryStringParameters"]

    response = invoke(index_handler, request)

    status, root = answer(response)
    assert status == 200
    rows = listed(root)
    assert len(rows) == 3
    assert all(row["consumed_on"] == row["consumed_by"] == "" for row in rows)
    assert response["body"].count("<consumed_on></consumed_on><consumed_by></consumed_by>") == 3
    assert all(ISO_Z.match(row["created_at"]) for row in rows)
    assert {row["offer_id"] for row in rows} == {str(WELCOME_OFFER)}


@pytest.mark.parametrize(
    ("consumed", "expected"), [("true", 2), ("false", 8), (None, 10), ("TRUE", 2), ("0", 8)]
)
def test_consumed_filters_consumed_and_unconsumed_codes(
    svc: Services, consumed: str | None, expected: int
) -> None:
    codes = codes_of(svc, SPRING_OFFER)
    used = {redeem(svc, codes[0].value, "7").value, redeem(svc, codes[1].value, "8").value}
    query = {"consumed": consumed} if consumed is not None else {}

    status, root = index(login(), **query)

    rows = listed(root)
    assert status == 200
    assert len(rows) == expected
    assert xml.child_text(root, "response/count") == str(expected)
    consumed_values = {row["code"] for row in rows if row["consumed_on"]}
    if consumed is not None:
        assert consumed_values == (used if expected == 2 else set())
    for row in rows:
        assert bool(row["consumed_on"]) == bool(row["consumed_by"])


def test_an_unreadable_consumed_filter_is_an_argument_error(svc: Services) -> None:
    status, root = index(login(), consumed="maybe")

    assert_error(status, root, -2)
    assert "consumed" in (xml.child_text(root, "response/message") or "")


def test_index_pages_by_offset_25_codes_at_a_time_newest_first(svc: Services) -> None:
    session = login()
    create(session, count="30")  # 33 codes in offer 1020 with its 3 seed codes

    _, first = index(session, offer=WELCOME_OFFER, limit="25")
    _, second = index(session, offer=WELCOME_OFFER, offset="25", limit="25")
    _, beyond = index(session, offer=WELCOME_OFFER, offset="33", limit="25")

    first_ids = [int(row["id"]) for row in listed(first)]
    second_ids = [int(row["id"]) for row in listed(second)]
    assert (len(first_ids), len(second_ids), listed(beyond)) == (25, 8, [])
    assert xml.child_text(second, "response/count") == "8"
    everything = first_ids + second_ids
    assert everything == sorted(everything, reverse=True)
    assert len(set(everything)) == 33


def test_index_without_paging_arguments_lists_every_code_and_counts_them(
    svc: Services,
) -> None:
    """SyncTV v1 shows no paging: a client that never pages must see the whole offer."""
    session = login()
    create(session, count="100")
    create(session, count="30")  # 133 codes in offer 1020 with its 3 seed codes

    status, everything = index(session, offer=WELCOME_OFFER)
    _, after_offset = index(session, offer=WELCOME_OFFER, offset="100")

    ids = [int(row["id"]) for row in listed(everything)]
    assert status == 200
    assert len(ids) == len(set(ids)) == 133
    assert ids == sorted(ids, reverse=True)
    assert xml.child_text(everything, "response/count") == "133"
    assert [int(row["id"]) for row in listed(after_offset)] == ids[100:]  # offset still honoured
    assert xml.child_text(after_offset, "response/count") == "33"


def test_index_without_limit_stops_at_its_documented_maximum(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert promo.protocols.synctv.requests.UNPAGED_MAXIMUM == 10_000  # docs/protocols/synctv.md
    monkeypatch.setattr(promo.protocols.synctv.requests, "UNPAGED_MAXIMUM", 7)
    create(login(), count="10")

    _, root = index(login(), offer=WELCOME_OFFER)

    assert len(listed(root)) == 7
    assert xml.child_text(root, "response/count") == "7"


def test_deleted_codes_are_neither_listed_nor_shown(svc: Services) -> None:
    """SyncTV has no removed state: a deleted code is gone from the offer (validate: -45)."""
    codes = codes_of(svc, SPRING_OFFER)
    gone = codes[0]
    svc.codes.delete("demo", [gone.uuid], ACTOR)
    session = login()

    _, root = index(session)
    _, unconsumed = index(session, consumed="false")

    assert gone.value not in {row["code"] for row in listed(root)}
    assert len(listed(root)) == len(codes) - 1
    assert xml.child_text(root, "response/count") == str(len(codes) - 1)
    assert gone.value not in {row["code"] for row in listed(unconsumed)}
    assert_error(*show(session, gone.number), -4)
    assert code_of(show(session, codes[1].number)[1]) == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"limit": "0"}, -2),
        ({"limit": "1"}, 1),
        ({"limit": "100"}, 1),
        ({"limit": "101"}, -2),
        ({"offset": "-1"}, -2),
        ({"offset": "x"}, -2),
    ],
)
def test_limit_is_1_to_100_and_offset_not_negative(
    svc: Services, query: dict[str, str], expected: int
) -> None:
    status, root = index(login(), **query)

    assert code_of(root) == expected
    if expected == 1:
        assert len(listed(root)) == min(int(query["limit"]), 10)
    else:
        assert_error(status, root, -2)


# ---------------------------------------------------------------- show


def test_show_answers_unconsumed_codes_with_empty_consumed_fields(svc: Services) -> None:
    code = codes_of(svc, SPRING_OFFER)[3]

    status, root = show(login(), code.number)

    assert status == 200
    assert xml.child_text(root, "promo_code/code") == code.value
    assert xml.child_text(root, "promo_code/consumed_on") is None
    assert xml.child_text(root, "promo_code/consumed_by") is None


def test_show_does_not_find_a_code_through_another_offer_or_tenant(svc: Services) -> None:
    welcome_code = codes_of(svc, WELCOME_OFFER)[0]
    spring_code = codes_of(svc, SPRING_OFFER)[0]

    assert_error(*show(login(), welcome_code.number, offer=SPRING_OFFER), -4)
    assert_error(*show(login(OTHER_ADMIN), spring_code.number), -4)
    assert_error(*show(login(), 9999), -4)
    assert_error(*show(login(), "abc"), -2)


# ---------------------------------------------------------------- validate


def put_state(svc: Services, state: str) -> str:
    """A code of offer 2 in ``state``; its value."""
    spring = pool_of(svc, SPRING_OFFER)
    windows = {"not yet valid": Window(start=moment(1)), "expired": Window(end=moment(-1))}
    value = f"STATE-{state.upper().replace(' ', '-')}"
    new = NewCode(spring.pool_id, value, windows.get(state, Window()))
    (code,) = svc.codes.add("demo", {spring.pool_id: spring}, [new], ACTOR)
    if state == "issued":
        svc.codes.issue("demo", value, Issuance(moment(), ACTOR))
    elif state == "used":
        svc.codes.redeem(
            "demo", value, Issuance(moment(), ACTOR, Recipient("maestra.webSiteUserId", "2365"))
        )
    elif state == "blocked":
        svc.codes.block("demo", value, moment(), ACTOR)
    elif state.startswith("held"):  # its one use held for a customer, until a deadline
        deadline = moment(-1 if "expired" in state else 1)
        holder = Issuance(moment(), ACTOR, Recipient("maestra.webSiteUserId", "2366"))
        svc.codes.reserve("demo", value, holder, deadline)
    elif state == "deleted":
        svc.codes.delete("demo", [code.uuid], ACTOR)
    return value


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("available", 1),
        ("issued", 1),
        ("used", -45),
        ("blocked", -45),
        ("deleted", -45),
        ("not yet valid", -45),
        ("expired", -45),
        ("held", -45),
        ("held until a deadline now expired", 1),
    ],
)
def test_validate_answers_1_only_for_a_redeemable_code(
    svc: Services, state: str, expected: int
) -> None:
    value = put_state(svc, state)

    status, root = validate(value)

    assert (status, code_of(root)) == (200, expected)
    assert xml.child_text(root, "response/count") == "0"
    assert [child.tag for child in root.find("response")] == ["code", "message", "count"]  # type: ignore[union-attr]


def test_another_tenants_code_validates_exactly_like_an_unknown_one(svc: Services) -> None:
    _, foreign = validate(OTHER_CODE)
    _, unknown = validate("NO-SUCH-CODE")
    _, theirs = validate(OTHER_CODE, device=OTHER_DEVICE)

    assert code_of(foreign) == -45
    assert etree.tostring(foreign) == etree.tostring(unknown)
    assert code_of(theirs) == 1


def test_an_unknown_device_is_refused_as_record_not_found(svc: Services) -> None:
    status, root = validate("SPRING-7KQ3", device="urn:synctv:devices:web:00000000")

    assert_error(status, root, -4)
    assert "Device" in (xml.child_text(root, "response/message") or "")


def test_without_a_session_the_device_is_required(svc: Services) -> None:
    status, root = validate("SPRING-7KQ3", device=None)

    assert_error(status, root, -2)
    assert "device" in (xml.child_text(root, "response/message") or "")


@pytest.mark.parametrize("who", [DEMO_ADMIN, DEMO_VIEWER], ids=["admin", "viewer"])
def test_with_a_session_validate_uses_the_sessions_tenant_and_needs_no_device(
    svc: Services, who: Login
) -> None:
    session = login(who)

    assert code_of(validate("SPRING-7KQ3", device=None, session=session)[1]) == 1
    assert code_of(validate(OTHER_CODE, device=OTHER_DEVICE, session=session)[1]) == -45


def test_an_ended_session_falls_back_to_the_device(svc: Services) -> None:
    token = ended_session(svc)

    assert_error(*validate("SPRING-7KQ3", device=None, session=token), -2)
    assert code_of(validate("SPRING-7KQ3", session=token)[1]) == 1


def test_validate_needs_a_code(svc: Services) -> None:
    request = synctv_event("GET", VALIDATE, f"GET {VALIDATE}", {"device": DEMO_DEVICE})

    status, root = answer(invoke(validate_handler, request))

    assert_error(status, root, -2)
    assert "code" in (xml.child_text(root, "response/message") or "")


def test_validate_never_changes_the_code(svc: Services) -> None:
    validate("SPRING-7KQ3")
    validate("SPRING-7KQ3")

    code = svc.codes.get("demo", "SPRING-7KQ3")
    assert code is not None
    assert code.state == "AVAILABLE"
    assert code.used_at is None


# ---------------------------------------------------------------- validate: the miss limit

MISS_LIMIT, MISS_WINDOW = 3, 600


@pytest.fixture
def frozen(svc: Services, monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """Validate with at most 3 misses per 10 minutes (a new instance reads the setting), at a
    time the test moves by changing the list's only element."""
    cold_start(validate_miss_limit=MISS_LIMIT, validate_miss_window_seconds=MISS_WINDOW)
    now = [clock.now()]
    monkeypatch.setattr(clock, "now", lambda: now[0])
    return now


def validate_response(
    code: str, device: str | None = DEMO_DEVICE, session: str | None = None
) -> dict[str, Any]:
    query = {"code": code} | ({"device": device} if device is not None else {})
    request = synctv_event("GET", VALIDATE, f"GET {VALIDATE}", query, None, session)
    return invoke(validate_handler, request)


def miss_to_the_limit(device: str = DEMO_DEVICE) -> None:
    for attempt in range(MISS_LIMIT):
        status, root = validate(f"GUESS-{attempt}", device=device)
        assert (status, code_of(root)) == (200, -45)


def block(device: str = DEMO_DEVICE) -> None:
    """Misses up to the limit, then the one past it, which is refused."""
    miss_to_the_limit(device)
    assert validate_response("GUESS-OVER", device)["statusCode"] == 429


def assert_too_many(response: dict[str, Any], now: datetime) -> None:
    status, root = answer(response)
    assert_error(status, root, -30, http_status=429)
    window_end = (int(now.timestamp()) // MISS_WINDOW + 1) * MISS_WINDOW
    assert response["headers"]["retry-after"] == str(window_end - int(now.timestamp()))


def test_under_the_miss_limit_validate_answers_as_usual(frozen: list[datetime]) -> None:
    miss_to_the_limit()

    assert code_of(validate("SPRING-7KQ3")[1]) == 1


def test_past_the_miss_limit_a_device_is_refused_with_429_even_for_a_valid_code(
    frozen: list[datetime],
) -> None:
    miss_to_the_limit()

    assert_too_many(validate_response("GUESS-OVER"), frozen[0])
    assert_too_many(validate_response("SPRING-7KQ3"), frozen[0])


def test_the_refusal_says_nothing_about_the_code(frozen: list[datetime], svc: Services) -> None:
    block()
    used = put_state(svc, "used")

    responses = [validate_response(c) for c in ("SPRING-7KQ3", "NO-SUCH-CODE", OTHER_CODE, used)]

    assert all(r["statusCode"] == 429 for r in responses)
    assert len({(r["body"], tuple(sorted(r["headers"].items()))) for r in responses}) == 1
    assert not any(c in responses[0]["body"] for c in ("SPRING", "NO-SUCH", OTHER_CODE))


def test_the_miss_limit_ends_with_its_window(frozen: list[datetime]) -> None:
    block()
    assert validate_response("SPRING-7KQ3")["statusCode"] == 429

    frozen[0] += timedelta(seconds=MISS_WINDOW)

    assert code_of(validate("SPRING-7KQ3")[1]) == 1
    miss_to_the_limit()


def test_a_blocked_device_blocks_neither_a_session_user_nor_another_tenants_device(
    frozen: list[datetime],
) -> None:
    block()

    viewer = login(DEMO_VIEWER)
    assert code_of(validate("SPRING-7KQ3", device=None, session=viewer)[1]) == 1
    assert code_of(validate("GUESS-BY-VIEWER", device=None, session=viewer)[1]) == -45
    assert code_of(validate(OTHER_CODE, device=OTHER_DEVICE)[1]) == 1
    miss_to_the_limit(OTHER_DEVICE)


def test_a_session_user_has_a_miss_limit_of_its_own(frozen: list[datetime]) -> None:
    viewer = login(DEMO_VIEWER)
    for attempt in range(MISS_LIMIT):
        assert code_of(validate(f"GUESS-{attempt}", device=None, session=viewer)[1]) == -45

    assert_too_many(validate_response("GUESS-OVER", device=None, session=viewer), frozen[0])
    assert_too_many(validate_response("SPRING-7KQ3", device=None, session=viewer), frozen[0])
    assert code_of(validate("SPRING-7KQ3")[1]) == 1  # the device is another caller


# ---------------------------------------------------------------- failures


def test_an_unexpected_failure_is_a_generic_500_without_details(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(promo.services.listing, "pool_codes", explode)

    response = invoke(index_handler, with_session(event("synctv_index"), login()))

    status, root = answer(response)
    assert_error(status, root, -1, http_status=500)
    assert "internal detail" not in response["body"]


def test_an_unavailable_store_is_a_generic_500(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("throttled after retries: table promo-x")

    monkeypatch.setattr(promo.services.validation, "validate_code", unavailable)

    status, root = validate("SPRING-7KQ3")

    assert_error(status, root, -1, http_status=500)
    assert "throttled" not in (xml.child_text(root, "response/message") or "")


# ---------------------------------------------------------------- stored events


@pytest.mark.parametrize("name", ["login", "logout", "index", "show", "create", "validate"])
def test_each_stored_event_is_routed_to_its_function(name: str) -> None:
    stored = event(f"synctv_{name}")

    found = Router().find(stored["requestContext"]["http"]["method"], stored["rawPath"])

    assert found is not None
    route, parameters = found
    assert route.code_uri.name == f"synctv_{name}"
    assert stored["routeKey"] == route.route_key
    assert stored.get("pathParameters", {}) == parameters
    assert dict(parse_qsl(stored["rawQueryString"])) == stored.get("queryStringParameters", {})


# ---------------------------------------------------------------- a case-insensitive tenant


def test_in_a_case_insensitive_tenant_validate_matches_any_spelling_and_index_shows_the_value_as_added(
    svc: Services,
) -> None:
    # config/demo.yaml: tenant demo has case_sensitive: false; tenant other is sensitive.
    spellings = ["SPRING-7KQ3", "spring-7kq3", "Spring-7Kq3"]

    answers = [code_of(validate(value)[1]) for value in spellings]
    redeem(svc, "spring-7KQ3", "someone")
    after = code_of(validate("SPRING-7kq3")[1])
    _, listed_root = index(login(), consumed="true")

    assert answers == [1, 1, 1]
    assert after == -45
    assert [row["code"] for row in listed(listed_root)] == ["SPRING-7KQ3"]
    assert code_of(validate(OTHER_CODE.lower(), device=OTHER_DEVICE)[1]) == -45
    assert code_of(validate(OTHER_CODE, device=OTHER_DEVICE)[1]) == 1


def test_after_a_tenant_switches_to_case_insensitive_its_earlier_codes_validate_in_any_spelling(
    svc: Services,
) -> None:
    before = code_of(validate(OTHER_CODE.lower(), device=OTHER_DEVICE)[1])
    put_tenant(svc.catalog, svc.codes, tenant("other", case_sensitive=False), NO_WAIT)

    assert before == -45
    assert code_of(validate(OTHER_CODE.lower(), device=OTHER_DEVICE)[1]) == 1
    assert code_of(validate(OTHER_CODE, device=OTHER_DEVICE)[1]) == 1
