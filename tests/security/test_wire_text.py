"""Wire text and the one value policy (issue 15, items 1 and 7).

- Every text field of every route that can store text, sent with a character XML 1.0 cannot
  carry (U+0001, U+FFFE; a lone surrogate where JSON can carry it), is refused in the route's
  own error shape, and the table is unchanged (a scan before and after).
- Codes seeded directly through the store with such values, points of contact, recipients and
  pool names render through every route without a 5xx: each such character becomes U+FFFD.
- The look-alike table through the protocols: NFC and NFD ``CAFÉ`` are one code; fullwidth,
  ligature, Hangul filler, Cyrillic-in-Latin and space-padded values are refused by Mews add and
  by Maestra issue by value; an XML ``" PAD "`` no longer issues ``PAD``.
"""

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from lxml import etree

from promo.domain import clock
from promo.domain.models import (
    CodeState,
    CrmCampaign,
    Issuance,
    NewCode,
    PointOfContact,
    Pool,
    PoolAliases,
    Recipient,
)
from tests.security.world import (
    CRM_LOGIN,
    CRM_REQUEST,
    DEMO_DEVICE,
    DEMO_SPRING_VOUCHER,
    MAESTRA_ASYNC,
    MAESTRA_SYNC,
    MEWS_ADD,
    MEWS_DELETE,
    MEWS_GET_ALL,
    SYNCTV_INDEX,
    SYNCTV_LOGIN,
    SYNCTV_SHOW,
    SYNCTV_VALIDATE,
    Answer,
    World,
    call,
    json_event,
    maestra_event,
    mews_body,
    request_event,
    scan,
)
from tests.support.deployment import use_sender

pytestmark = pytest.mark.integration

# What XML 1.0 cannot carry; a lone surrogate only where the request format can carry one
# (JSON's \ud800 escape: a query string or form is UTF-8, which cannot).
UNSAFE = {"U+0001": "\x01", "U+FFFE": "\ufffe"}
UNSAFE_JSON = {**UNSAFE, "lone surrogate": "\ud800"}


@pytest.fixture(autouse=True)
def queued() -> Iterator[list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    use_sender(sent.append)
    yield sent
    use_sender(None)


def _middle(char: str) -> str:
    return f"AB{char}CD"


# ---------------------------------------------------------------------- (a) refused at the boundary


def _mews(function: str, **fields: Any) -> Callable[[World, str], dict[str, Any]]:
    def build(w: World, text: str) -> dict[str, Any]:
        extra = {
            name: (text if value is None else value(w, text)) for name, value in fields.items()
        }
        return json_event(function, mews_body(w.mews, **extra))

    return build


def _voucher(w: World, text: str) -> list[dict[str, str]]:
    return [{"VoucherId": DEMO_SPRING_VOUCHER, "Value": text}]


def _mews_client(function: str, **fields: Any) -> Callable[[World, str], dict[str, Any]]:
    def build(w: World, text: str) -> dict[str, Any]:
        body = mews_body(w.mews, **{k: v(w) for k, v in fields.items()})
        return json_event(function, {**body, "Client": text})

    return build


def _maestra(function: str, operation: str, body: Callable[[str], dict[str, Any]]) -> Any:
    def build(w: World, text: str) -> dict[str, Any]:
        return maestra_event(
            function, operation, body(text), authorization=f"SecretKey {w.maestra_key}"
        )

    return build


def _value(text: str) -> dict[str, Any]:
    return {"promoCode": {"ids": {"value": text}}}


def _pool_named(text: str) -> dict[str, Any]:
    return {"promoCode": {"pool": {"ids": {"externalId": text}}}}


def _from_pool(**fields: Any) -> Callable[[str], dict[str, Any]]:
    def body(text: str) -> dict[str, Any]:
        document: dict[str, Any] = _pool_named("spring-2025")
        if "user" in fields:
            document["customer"] = {"ids": {"webSiteUserId": text}}
        if "contact" in fields:
            document["pointOfContact"] = text
        return document

    return body


def _create(text: str) -> dict[str, Any]:
    return {"promoCode": {"ids": {"value": text}, "pool": {"ids": {"externalId": "spring-2025"}}}}


MAESTRA_FIELDS: dict[str, tuple[str, Callable[[str], dict[str, Any]], str]] = {
    "issue by value: value": ("IssuePromoCodeByValue", _value, "/promoCode/ids/value"),
    "create and issue: value": ("CreateAndIssuePromoCode", _create, "/promoCode/ids/value"),
    "redeem: value": ("RedeemPromoCode", _value, "/promoCode/ids/value"),
    "from pool: externalId": (
        "IssuePromoCodeFromPool",
        _pool_named,
        "/promoCode/pool/ids/externalId",
    ),
    "from pool: webSiteUserId": (
        "IssuePromoCodeFromPool",
        _from_pool(user=True),
        "/customer/ids/webSiteUserId",
    ),
    "from pool: pointOfContact": (
        "IssuePromoCodeFromPool",
        _from_pool(contact=True),
        "/pointOfContact",
    ),
}


def _crm_request(recipient: Callable[[str], dict[str, Any]], campaign: Any = None) -> Any:
    def build(w: World, text: str) -> dict[str, Any]:
        identifier = {"alternative_code": "BG4"} if campaign is None else campaign(text)
        document = {
            "token": w.crm_token,
            "promotion_campaign_identifier": identifier,
            **recipient(text),
        }
        return json_event(CRM_REQUEST, document)

    return build


def _crm_login(field: str) -> Callable[[World, str], dict[str, Any]]:
    def build(w: World, text: str) -> dict[str, Any]:
        document = {"username": "MPAdministrator", "password": "x", "organisation": "demo"}
        return json_event(CRM_LOGIN, {**document, field: text})

    return build


def _participant(text: str) -> dict[str, Any]:
    return {"rewards_participant_identifier": {"number": text}}


CRM_FIELDS: dict[str, Callable[[World, str], dict[str, Any]]] = {
    "contact_information_identifier.id": _crm_request(
        lambda t: {"contact_information_identifier": {"id": t}}
    ),
    "accounts_receivable_identifier.number": _crm_request(
        lambda t: {"accounts_receivable_identifier": {"number": t}}
    ),
    "subscription_identifier.number": _crm_request(
        lambda t: {"subscription_identifier": {"number": t}}
    ),
    "rewards_participant_identifier.number": _crm_request(_participant),
    "access_token_identifier.identifier": _crm_request(
        lambda t: {
            "rewards_participant_identifier": {
                "access_token_identifier": {"identifier": t, "pass_code": "1234"}
            }
        }
    ),
    "promotion_campaign_identifier.name": _crm_request(
        lambda t: _participant("RP1"), campaign=lambda t: {"name": t}
    ),
    "login username": _crm_login("username"),
    "login organisation": _crm_login("organisation"),
    "login unit": _crm_login("unit"),
}

MEWS_FIELDS: dict[str, Callable[[World, str], dict[str, Any]]] = {
    "add Value": _mews(MEWS_ADD, VoucherCodeParameters=_voucher),
    "add Client": _mews_client(
        MEWS_ADD,
        VoucherCodeParameters=lambda w: [{"VoucherId": DEMO_SPRING_VOUCHER, "Value": "CLIENT-1"}],
    ),
    "delete Client": _mews_client(
        MEWS_DELETE, VoucherCodeIds=lambda w: [w.code_uuids["WELCOME-R3XM"]]
    ),
    "getAll Client": _mews_client(MEWS_GET_ALL, Limitation=lambda w: {"Count": 1}),
}


def _synctv_validate(field: str, session: bool = False) -> Callable[[World, str], dict[str, Any]]:
    def build(w: World, text: str) -> dict[str, Any]:
        query = {"code": "SPRING-7KQ3", "device": DEMO_DEVICE, field: text}
        cookie = w.synctv_viewer if session else None
        return request_event(SYNCTV_VALIDATE, query=query, cookie=cookie)

    return build


def _synctv_login(field: str) -> Callable[[World, str], dict[str, Any]]:
    def build(w: World, text: str) -> dict[str, Any]:
        form = urlencode({field: text, "password": "demo-synctv-password"}).encode()
        return request_event(
            SYNCTV_LOGIN, body=form, content_type="application/x-www-form-urlencoded"
        )

    return build


SYNCTV_FIELDS: dict[str, Callable[[World, str], dict[str, Any]]] = {
    "validate code": _synctv_validate("code"),
    "validate device (no session)": _synctv_validate("device"),
    "validate device (with a session)": _synctv_validate("device", session=True),
    "login email": _synctv_login("email"),
    "login username": _synctv_login("username"),
}


def _refused_unchanged(world: World, function: str, event: dict[str, Any]) -> Answer:
    before = scan(world)
    answer = call(function, event)
    assert answer.status < 500, answer.body[:300]
    assert "Traceback" not in answer.body
    assert scan(world) == before
    return answer


@pytest.mark.parametrize("char", UNSAFE_JSON)
@pytest.mark.parametrize("field", MEWS_FIELDS)
def test_mews_refuses_unsafe_text_in_its_shape_and_writes_nothing(
    world: World, field: str, char: str
) -> None:
    function = {"add": MEWS_ADD, "delete": MEWS_DELETE, "getAll": MEWS_GET_ALL}[field.split()[0]]
    event = MEWS_FIELDS[field](world, _middle(UNSAFE_JSON[char]))

    answer = _refused_unchanged(world, function, event)

    assert answer.status == 400, answer.body
    body = answer.json()
    assert set(body) == {"Message", "RequestId"}
    assert field.split()[-1] in body["Message"]


@pytest.mark.parametrize("char", UNSAFE_JSON)
@pytest.mark.parametrize("field", MAESTRA_FIELDS)
@pytest.mark.parametrize("function", [MAESTRA_SYNC, MAESTRA_ASYNC])
def test_maestra_refuses_unsafe_text_with_a_validation_error_naming_the_field(
    world: World, queued: list[dict[str, Any]], function: str, field: str, char: str
) -> None:
    operation, body, location = MAESTRA_FIELDS[field]
    event = _maestra(function, operation, body)(world, _middle(UNSAFE_JSON[char]))

    answer = _refused_unchanged(world, function, event)

    assert answer.status == 200, answer.body
    document = answer.json()
    assert document["status"] == "ValidationError"
    assert [m["location"] for m in document["validationMessages"]] == [location]
    assert queued == []


@pytest.mark.parametrize("reference", [b"&#x1;", b"&#xFFFE;"])
@pytest.mark.parametrize("function", [MAESTRA_SYNC, MAESTRA_ASYNC])
def test_maestra_xml_cannot_even_carry_unsafe_text(
    world: World, queued: list[dict[str, Any]], function: str, reference: bytes
) -> None:
    body = b"<operation><pointOfContact>AB" + reference + b"CD</pointOfContact><promoCode>"
    body += b"<pool><ids><externalId>spring-2025</externalId></ids></pool></promoCode></operation>"
    event = maestra_event(
        function,
        "IssuePromoCodeFromPool",
        body,
        authorization=f"SecretKey {world.maestra_key}",
        content_type="application/xml",
    )

    answer = _refused_unchanged(world, function, event)

    assert answer.status == 400
    root = etree.fromstring(answer.body.encode())
    assert root.findtext("status") == "ProtocolError"
    assert queued == []


@pytest.mark.parametrize("char", UNSAFE)
@pytest.mark.parametrize("field", SYNCTV_FIELDS)
def test_synctv_refuses_unsafe_text_with_a_negative_code(
    world: World, field: str, char: str
) -> None:
    function = SYNCTV_LOGIN if field.startswith("login") else SYNCTV_VALIDATE
    event = SYNCTV_FIELDS[field](world, _middle(UNSAFE[char]))

    answer = _refused_unchanged(world, function, event)

    assert answer.status == 400, answer.body
    root = etree.fromstring(answer.body.encode())
    assert int(root.findtext("response/code") or "0") < 0
    assert not answer.cookies  # no session started


@pytest.mark.parametrize("char", UNSAFE_JSON)
@pytest.mark.parametrize("field", CRM_FIELDS)
def test_crm_refuses_unsafe_text_in_its_status_object(world: World, field: str, char: str) -> None:
    function = CRM_LOGIN if field.startswith("login") else CRM_REQUEST
    event = CRM_FIELDS[field](world, _middle(UNSAFE_JSON[char]))

    answer = _refused_unchanged(world, function, event)

    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["data"] is None
    assert body["status"]["code"] == "INVALID_PARAMETER", body


# ---------------------------------------------------------------------- (b) total rendering

HOSTILE_VOUCHER = "0b7c9a52-3e1f-4d6a-8f20-5c4b3a291807"
HOSTILE_OFFER = 99
# Values the policy refuses, written around it: every available code of the pool has one.
BAD_VALUES = ["BAD\x01ONE", "BAD\ufffeTWO", "BAD\x1fTHREE", "BAD\uffffFOUR", "\x01BAD-FIVE"]
BAD_CONTACT = PointOfContact("POS\x01-7", "Shop\ufffe Riga")
BAD_USER = Recipient("maestra.webSiteUserId", "USER\x01-42")
ISSUED_WITH_BAD_CONTACT = ("CONTACT-XML", "CONTACT-JSON", "CONTACT-VALIDATE")
USED_BY_BAD_USER = "USED-BY-BAD"


def _seeded_code(pool_id: str, value: str) -> NewCode:
    """A NewCode holding ``value`` as is: the value policy is what these codes get around."""
    new = NewCode(pool_id, "PLACEHOLDER")
    object.__setattr__(new, "value", value)
    return new


@pytest.fixture(scope="module")
def hostile(world: World) -> Pool:
    """A pool of demo's that every protocol can name, whose stored texts XML cannot carry."""
    svc = world.svc
    pool = Pool(
        tenant_id="demo",
        pool_id="hostile",
        name="Hostile\x01 pool",
        description="Seeded\ufffe around the boundary check",
        aliases=PoolAliases(
            maestra_external_id="hostile",
            crm_campaign=CrmCampaign(
                id="0B7C9A523E1F4D6A8F205C4B3A291807",
                name="Hostile",
                alternative_code="HST",
                description="A campaign\x01 description",
            ),
            synctv_offer_id=HOSTILE_OFFER,
            mews_voucher_id=uuid.UUID(HOSTILE_VOUCHER),
        ),
    )
    svc.catalog.put_pool(pool)
    values = [*BAD_VALUES, *ISSUED_WITH_BAD_CONTACT, USED_BY_BAD_USER]
    svc.codes.add("demo", {pool.pool_id: pool}, [_seeded_code("hostile", v) for v in values], "t")
    at = clock.now() - timedelta(seconds=1)
    for value in ISSUED_WITH_BAD_CONTACT:
        svc.codes.issue("demo", value, Issuance(at, "test", BAD_USER, BAD_CONTACT))
    svc.codes.redeem("demo", USED_BY_BAD_USER, Issuance(at, "test", BAD_USER, BAD_CONTACT))
    return pool


def _texts(answer: Answer) -> str:
    """Every text of an answer, parsed: XML through lxml, JSON through json."""
    assert answer.status < 500, answer.body[:300]
    if answer.headers["content-type"].startswith("application/xml"):
        return " ".join(str(t) for t in etree.fromstring(answer.body.encode()).itertext())
    return str(answer.json())


def _maestra_call(world: World, operation: str, body: dict[str, Any], as_xml: bool) -> Answer:
    event = maestra_event(
        MAESTRA_SYNC, operation, body, authorization=f"SecretKey {world.maestra_key}"
    )
    event["headers"]["accept"] = "application/xml" if as_xml else "application/json"
    return call(MAESTRA_SYNC, event)


def _maestra_result(answer: Answer) -> dict[str, Any]:
    if answer.headers["content-type"].startswith("application/xml"):
        root = etree.fromstring(answer.body.encode())
        code = root.find("promoCode")
        assert code is not None
        return {
            "status": root.findtext("status"),
            "value": code.findtext("ids/value"),
            "poolName": code.findtext("pool/name"),
            "issued": code.findtext("issuedPointOfContact/ids/externalId"),
            "used": code.findtext("usedPointOfContact/ids/externalId"),
        }
    document = answer.json()
    code = document["promoCode"]
    return {
        "status": document["status"],
        "value": code["ids"]["value"],
        "poolName": code["pool"].get("name"),
        "issued": code.get("issuedPointOfContact", {}).get("ids", {}).get("externalId"),
        "used": code.get("usedPointOfContact", {}).get("ids", {}).get("externalId"),
    }


@pytest.mark.parametrize("as_xml", [True, False], ids=["xml", "json"])
def test_maestra_issues_a_seeded_unsafe_value_from_a_pool_and_renders_it(
    world: World, hostile: Pool, as_xml: bool
) -> None:
    answer = _maestra_call(world, "IssuePromoCodeFromPool", _pool_named("hostile"), as_xml)

    result = _maestra_result(answer)
    assert answer.status == 200
    assert result["status"] == "Success"
    assert "\ufffd" in result["value"]
    assert result["poolName"] == "Hostile\ufffd pool"
    code = world.svc.codes.get("demo", _stored(result["value"]))
    assert code is not None
    assert code.state is CodeState.ISSUED  # the answer tells the truth about what was written


def _stored(rendered: str) -> str:
    """The seeded value an answer rendered (each unsafe character shown as U+FFFD)."""
    (value,) = [
        v
        for v in BAD_VALUES
        if "".join("\ufffd" if not c.isprintable() or c in "\ufffe\uffff" else c for c in v)
        == rendered
    ]
    return value


@pytest.mark.parametrize(
    ("value", "as_xml"), [("CONTACT-XML", True), ("CONTACT-JSON", False)], ids=["xml", "json"]
)
def test_maestra_redeems_a_code_issued_at_an_unsafe_point_of_contact_and_renders_it(
    world: World, hostile: Pool, value: str, as_xml: bool
) -> None:
    answer = _maestra_call(world, "RedeemPromoCode", _value(value), as_xml)

    result = _maestra_result(answer)
    assert (answer.status, result["status"]) == (200, "Success")
    assert result["issued"] == "POS\ufffd-7"
    code = world.svc.codes.get("demo", value)
    assert code is not None
    assert code.state is CodeState.USED


@pytest.mark.parametrize("as_xml", [True, False], ids=["xml", "json"])
def test_maestra_shows_a_code_used_with_unsafe_texts(
    world: World, hostile: Pool, as_xml: bool
) -> None:
    before = scan(world)

    answer = _maestra_call(world, "IssuePromoCodeByValue", _value(USED_BY_BAD_USER), as_xml)

    result = _maestra_result(answer)
    assert answer.status == 200
    assert result["used"] == "POS\ufffd-7"
    assert scan(world) == before


def test_synctv_index_and_show_render_seeded_unsafe_texts(world: World, hostile: Pool) -> None:
    cookie = world.synctv_admin
    path = {"offer_id": str(HOSTILE_OFFER)}
    index = call(SYNCTV_INDEX, request_event(SYNCTV_INDEX, path_parameters=path, cookie=cookie))

    texts = _texts(index)
    assert index.status == 200
    root = etree.fromstring(index.body.encode())
    assert root.findtext("response/code") == "1"
    shown = {node.findtext("code") for node in root.iter("promo_code")}
    assert "BAD\ufffdONE" in shown
    assert "USER\ufffd-42" in texts  # consumed_by of the used code
    for node in root.iter("promo_code"):
        one = call(
            SYNCTV_SHOW,
            request_event(
                SYNCTV_SHOW,
                path_parameters={**path, "id": node.findtext("id") or ""},
                cookie=cookie,
            ),
        )
        assert one.status == 200, one.body
        _texts(one)


def test_synctv_validates_a_code_issued_at_an_unsafe_point_of_contact(
    world: World, hostile: Pool
) -> None:
    query = {"code": "CONTACT-VALIDATE", "device": DEMO_DEVICE}

    answer = call(SYNCTV_VALIDATE, request_event(SYNCTV_VALIDATE, query=query))

    _texts(answer)
    assert etree.fromstring(answer.body.encode()).findtext("response/code") == "1"


def test_mews_lists_seeded_unsafe_values(world: World, hostile: Pool) -> None:
    body = mews_body(world.mews, VoucherIds=[HOSTILE_VOUCHER], Limitation={"Count": 100})

    answer = call(MEWS_GET_ALL, json_event(MEWS_GET_ALL, body))

    assert answer.status == 200, answer.body
    values = {code["Value"] for code in answer.json()["VoucherCodes"]}
    assert "BAD\ufffdONE" in values
    assert all(v.isprintable() for v in values)


def test_crm_issues_a_seeded_unsafe_value_and_renders_it(world: World, hostile: Pool) -> None:
    document = {
        "token": world.crm_token,
        "promotion_campaign_identifier": {"alternative_code": "HST"},
        **_participant("RP0000000618"),
    }

    answer = call(CRM_REQUEST, json_event(CRM_REQUEST, document))

    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["status"]["code"] == "OK", body
    assert "\ufffd" in body["data"]["code"]
    assert body["data"]["promotion_campaign"]["description"] == "A campaign\ufffd description"
    code = world.svc.codes.get("demo", _stored(body["data"]["code"]))
    assert code is not None
    assert code.state is CodeState.ISSUED


# ---------------------------------------------------------------------- (c) look-alikes

NFC_CAFE, NFD_CAFE = "CAF\u00c9-15", "CAFE\u0301-15"
LOOK_ALIKES = {
    "fullwidth": "\uff33\uff30\uff32\uff29\uff2e\uff27",
    "ligature": "\ufb01ve-15",
    "Hangul filler": "SPRING-15\u3164",
    "Cyrillic in Latin": "SPRIN\u0410G-15",
    "space at both ends": " PAD-15 ",
    "space at the end": "PAD-15 ",
}


def _mews_add(world: World, value: str) -> Answer:
    body = mews_body(world.mews, VoucherCodeParameters=_voucher(world, value))
    return call(MEWS_ADD, json_event(MEWS_ADD, body))


def _without_counters(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if not item["sk"]["S"].startswith("COUNTER#")]


def test_nfc_and_nfd_spellings_are_one_code_everywhere(world: World) -> None:
    added = _mews_add(world, NFC_CAFE)
    assert added.status == 200, added.body
    before = scan(world)

    again = _mews_add(world, NFD_CAFE)
    valid = call(
        SYNCTV_VALIDATE,
        request_event(SYNCTV_VALIDATE, query={"code": NFD_CAFE, "device": DEMO_DEVICE}),
    )

    assert again.status == 403, again.body  # a duplicate is a broken business rule in Mews
    assert "Duplicate" in again.json()["Message"]
    # A refused add still reserves its ids (the counter moves; issue 15 item 3, the store's
    # part): no code, pointer or anything else is written.
    assert _without_counters(scan(world)) == _without_counters(before)
    assert etree.fromstring(valid.body.encode()).findtext("response/code") == "1"

    issued = _maestra_call(world, "IssuePromoCodeByValue", _value(NFD_CAFE), as_xml=False)

    assert issued.json()["promoCode"]["issueStatus"] == "Issued"
    assert issued.json()["promoCode"]["ids"]["value"] == NFC_CAFE
    code = world.svc.codes.get("demo", NFC_CAFE)
    assert code is not None
    assert code.state is CodeState.ISSUED


@pytest.mark.parametrize("kind", LOOK_ALIKES)
def test_a_look_alike_is_refused_by_add_and_by_issue_by_value(world: World, kind: str) -> None:
    value = LOOK_ALIKES[kind]
    before = scan(world)

    added = _mews_add(world, value)
    issued = _maestra_call(world, "IssuePromoCodeByValue", _value(value), as_xml=False)

    assert added.status == 400, added.body
    assert "Value" in added.json()["Message"]
    assert issued.json()["status"] == "ValidationError", issued.body
    assert issued.json()["validationMessages"][0]["location"] == "/promoCode/ids/value"
    assert scan(world) == before


def test_xml_and_json_agree_a_padded_value_is_refused_not_stripped(world: World) -> None:
    assert _mews_add(world, "PAD").status == 200
    before = scan(world)
    xml_body = b"<operation><promoCode><ids><value> PAD </value></ids></promoCode></operation>"
    xml_event = maestra_event(
        MAESTRA_SYNC,
        "IssuePromoCodeByValue",
        xml_body,
        authorization=f"SecretKey {world.maestra_key}",
        content_type="application/xml",
    )

    as_xml = call(MAESTRA_SYNC, xml_event)
    as_json = _maestra_call(world, "IssuePromoCodeByValue", _value(" PAD "), as_xml=False)
    validate = call(
        SYNCTV_VALIDATE,
        request_event(SYNCTV_VALIDATE, query={"code": " PAD ", "device": DEMO_DEVICE}),
    )

    root = etree.fromstring(as_xml.body.encode())
    assert root.findtext("status") == "ValidationError", as_xml.body
    assert root.findtext("validationMessages/validationMessage/location") == (
        "/promoCode/ids/value"
    )
    assert as_json.json()["status"] == "ValidationError"
    assert etree.fromstring(validate.body.encode()).findtext("response/code") == "-2"
    assert scan(world) == before
    code = world.svc.codes.get("demo", "PAD")
    assert code is not None
    assert code.state is CodeState.AVAILABLE
