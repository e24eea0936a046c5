"""Every route of template.yaml x every way a credential can be bad → the vendor's own refusal,
no data in the body, and not one attribute of one item of the table changed.

The cases (issue 9, item 1):
- ``none``: no credentials at all;
- ``malformed``: a credential of the wrong type, shape or size;
- ``wrong``: a well-formed secret that is not the right one;
- ``other_tenant``: another tenant's secret (rival's) presented for demo's identity, or, where the
  credential is a single bearer token, rival's live token against demo's records (answered as
  "not found": the token is valid, the record is not rival's);
- ``expired``: an expired session or token, or a Maestra key / Mews token rotated out;
- ``revoked``: a released token, an ended session, a removed endpoint, user or token.

Routes that are public by design have their own cases: the login routes refuse bad passwords
(``expired`` does not apply to a password), SyncTV logout succeeds without changing anything for
any cookie that is not a live session, and validate's ``device`` is the credential when there is
no session. The route list comes from ``tools.router.routes()``: a route added to the template
without cases here fails ``test_every_route_of_the_template_has_auth_cases``.
"""

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from lxml import etree

import promo.secret_hashing
from promo.secret_hashing import new_token, token_digest
from tests.security.world import (
    CRM_LOGIN,
    CRM_LOGOUT,
    CRM_REQUEST,
    DEMO_CODES,
    DEMO_CRM_PASSWORD,
    DEMO_CRM_USER,
    DEMO_DATA_MARKERS,
    DEMO_MAESTRA_KEY,
    DEMO_SPRING_VOUCHER,
    DEMO_SYNCTV_ADMIN,
    DEMO_SYNCTV_PASSWORD,
    DEMO_VIEWER_PASSWORD,
    DEMO_WELCOME_OFFER,
    FORMER_CRM_USER,
    FORMER_PASSWORD,
    FORMER_SYNCTV_USER,
    MAESTRA_ASYNC,
    MAESTRA_SYNC,
    MEWS_ADD,
    MEWS_DELETE,
    MEWS_GET_ALL,
    RIVAL_CRM_PASSWORD,
    RIVAL_DEVICE,
    RIVAL_MAESTRA_KEY,
    RIVAL_SYNCTV_ADMIN,
    ROUTES,
    SYNCTV_CREATE,
    SYNCTV_INDEX,
    SYNCTV_LOGIN,
    SYNCTV_LOGOUT,
    SYNCTV_SHOW,
    SYNCTV_VALIDATE,
    Answer,
    MewsPair,
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

CASES = ("none", "malformed", "wrong", "other_tenant", "expired", "revoked")

Build = Callable[[World], dict[str, Any]]
Expect = Callable[[Answer], None]


# ---------------------------------------------------------------------- vendor refusals


def mews_refused(status: int) -> Expect:
    def expect(answer: Answer) -> None:
        assert answer.status == status, answer.body
        assert answer.headers["content-type"].startswith("application/json")
        body = answer.json()
        assert set(body) == {"Message", "RequestId"}
        assert isinstance(body["Message"], str)
        assert body["Message"]

    return expect


def maestra_refused(answer: Answer) -> None:
    assert answer.status == 401, answer.body
    body = answer.json()
    assert set(body) == {"status", "errorMessage", "errorId", "httpStatusCode"}
    assert (body["status"], body["httpStatusCode"]) == ("ProtocolError", 401)


def crm_refused(code: str) -> Expect:
    def expect(answer: Answer) -> None:
        assert answer.status == 200, answer.body
        body = answer.json()
        assert set(body) == {"data", "status"}
        assert body["data"] is None
        assert set(body["status"]) == {"code", "description", "message"}
        assert body["status"]["code"] == code, body

    return expect


def synctv_answer(answer: Answer) -> tuple[int, str]:
    """(code, message) of an ``<ssap>`` refusal, checking its exact shape."""
    assert answer.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(answer.body.encode())
    assert root.tag == "ssap"
    assert [child.tag for child in root] == ["response", "version"]
    response = root.find("response")
    assert response is not None
    assert [child.tag for child in response] == ["count", "code", "message"]
    assert response.findtext("count") == "0"
    return int(response.findtext("code") or "0"), response.findtext("message") or ""


def synctv_refused(code: int) -> Expect:
    def expect(answer: Answer) -> None:
        assert answer.status == 400, answer.body
        assert synctv_answer(answer)[0] == code
        assert not answer.cookies

    return expect


def synctv_invalid_code(answer: Answer) -> None:
    """validate's own "no": HTTP 200, -45, exactly the page's shape (count last, no version)."""
    assert answer.status == 200
    root = etree.fromstring(answer.body.encode())
    assert [child.tag for child in root.iter()][1:] == ["response", "code", "message", "count"]
    assert root.findtext("response/code") == "-45"


def synctv_logged_out(answer: Answer) -> None:
    """Logout without a live session: the success envelope and an expired cookie, nothing else."""
    assert answer.status == 200
    assert synctv_answer(answer)[0] == 1
    assert len(answer.cookies) == 1
    assert answer.cookies[0].startswith("_synctv_session=;")
    assert "Max-Age=0" in answer.cookies[0]


# ---------------------------------------------------------------------- requests per route


def _mews(function: str, fields: Callable[[World], dict[str, Any]]) -> dict[str, "Case"]:
    def build(pair: Callable[[World], MewsPair | None]) -> Build:
        return lambda w: json_event(function, mews_body(pair(w), **fields(w)))

    def malformed(w: World) -> dict[str, Any]:
        body = {"ClientToken": 12345, "AccessToken": [w.mews.access_token], **fields(w)}
        return json_event(function, {**body, "Client": "Security Tests 1.0"})

    refused = mews_refused(401)
    return {
        "none": Case(build(lambda w: None), refused),
        "malformed": Case(malformed, refused),
        "wrong": Case(
            build(lambda w: MewsPair("not-the-client-token", w.mews.access_token)), refused
        ),
        "other_tenant": Case(
            build(lambda w: MewsPair(w.rival_mews.client_token, w.mews.access_token)), refused
        ),
        "expired": Case(build(lambda w: w.mews_rotated), refused),
        "revoked": Case(build(lambda w: w.mews_revoked), refused),
    }


_ISSUE_FROM_POOL = {
    "customer": {"ids": {"webSiteUserId": "42"}},
    "promoCode": {"pool": {"ids": {"externalId": "welcome"}}},
}


def _maestra(function: str) -> dict[str, "Case"]:
    def build(
        authorization: Callable[[World], str | None], endpoint: str = "demo-website"
    ) -> Build:
        return lambda w: maestra_event(
            function,
            "IssuePromoCodeFromPool",
            _ISSUE_FROM_POOL,
            endpoint=endpoint,
            authorization=authorization(w),
        )

    def revoked(w: World) -> dict[str, Any]:
        endpoint, key = w.maestra_revoked
        return build(lambda _: f"SecretKey {key}", endpoint)(w)

    return {
        "none": Case(build(lambda w: None), maestra_refused),
        # The live key, but not in either accepted form (the quotes are missing).
        "malformed": Case(build(lambda w: f"Mindbox secretKey={w.maestra_key}"), maestra_refused),
        "wrong": Case(build(lambda w: "SecretKey not-the-secret-key"), maestra_refused),
        "other_tenant": Case(build(lambda w: f"SecretKey {RIVAL_MAESTRA_KEY}"), maestra_refused),
        "expired": Case(build(lambda w: f"SecretKey {DEMO_MAESTRA_KEY}"), maestra_refused),
        "revoked": Case(revoked, maestra_refused),
    }


def _crm_request(token: Callable[[World], Any]) -> Build:
    def build(w: World) -> dict[str, Any]:
        body: dict[str, Any] = {
            "promotion_campaign_identifier": {"alternative_code": "BG4"},
            "rewards_participant_identifier": {"number": "RP0000000618"},
        }
        value = token(w)
        if value is not None:
            body["token"] = value
        return json_event(CRM_REQUEST, body)

    return build


def _crm_release(token: Callable[[World], Any]) -> Build:
    def build(w: World) -> dict[str, Any]:
        value = token(w)
        return json_event(CRM_LOGOUT, {} if value is None else {"token": value})

    return build


def _crm_login(**fields: Any) -> Build:
    return lambda w: json_event(CRM_LOGIN, fields)


def _synctv_login(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> Build:
    return lambda w: request_event(SYNCTV_LOGIN, body=body, content_type=content_type)


def _form(**fields: str) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode()


def _synctv_admin_route(function: str) -> dict[str, "Case"]:
    def build(cookie: Callable[[World], str | None]) -> Build:
        def event(w: World) -> dict[str, Any]:
            path = {"offer_id": str(DEMO_WELCOME_OFFER)}
            query = None
            if function == SYNCTV_SHOW:
                path["id"] = str(w.code_numbers["WELCOME-4F7Q"])
            if function == SYNCTV_CREATE:
                query = {"count": "1", "length": "8"}
            return request_event(function, path_parameters=path, query=query, cookie=cookie(w))

        return event

    not_logged_in = synctv_refused(-10)
    return {
        "none": Case(build(lambda w: None), not_logged_in),
        "malformed": Case(build(lambda w: "x" * 1000), not_logged_in),
        "wrong": Case(build(lambda w: new_token()), not_logged_in),
        # rival's admin session is live, but offer 1020 is not rival's: "Offer not found."
        "other_tenant": Case(build(lambda w: w.rival_synctv), synctv_refused(-4)),
        "expired": Case(build(lambda w: w.synctv_expired), not_logged_in),
        "revoked": Case(build(lambda w: w.synctv_ended), not_logged_in),
    }


def _validate(cookie: Callable[[World], str | None], device: str | None = None) -> Build:
    def build(w: World) -> dict[str, Any]:
        query = {"code": "SPRING-7KQ3"}
        if device is not None:
            query["device"] = device
        return request_event(SYNCTV_VALIDATE, query=query, cookie=cookie(w))

    return build


def _logout(cookie: Callable[[World], str | None]) -> Build:
    return lambda w: request_event(SYNCTV_LOGOUT, cookie=cookie(w))


@dataclass(frozen=True)
class Case:
    build: Build
    expect: Expect


MATRIX: dict[str, dict[str, Case]] = {
    MEWS_GET_ALL: _mews(MEWS_GET_ALL, lambda w: {"Limitation": {"Count": 100}}),
    MEWS_ADD: _mews(
        MEWS_ADD,
        lambda w: {"VoucherCodeParameters": [{"VoucherId": DEMO_SPRING_VOUCHER, "Value": "NEW-1"}]},
    ),
    MEWS_DELETE: _mews(MEWS_DELETE, lambda w: {"VoucherCodeIds": [w.code_uuids["SPRING-7KQ3"]]}),
    MAESTRA_SYNC: _maestra(MAESTRA_SYNC),
    MAESTRA_ASYNC: _maestra(MAESTRA_ASYNC),
    CRM_REQUEST: {
        "none": Case(_crm_request(lambda w: None), crm_refused("AUTHENTICATION_FAILED")),
        "malformed": Case(_crm_request(lambda w: 12345), crm_refused("AUTHENTICATION_FAILED")),
        "wrong": Case(_crm_request(lambda w: new_token()), crm_refused("AUTHENTICATION_FAILED")),
        # rival's token is live; campaign BG4 is demo's, so for rival it does not exist.
        "other_tenant": Case(
            _crm_request(lambda w: w.rival_crm_token),
            crm_refused("PROMOTION_CAMPAIGN_NOT_FOUND"),
        ),
        "expired": Case(
            _crm_request(lambda w: w.crm_expired), crm_refused("AUTHENTICATION_FAILED")
        ),
        "revoked": Case(
            _crm_request(lambda w: w.crm_released), crm_refused("AUTHENTICATION_FAILED")
        ),
    },
    CRM_LOGOUT: {
        "none": Case(_crm_release(lambda w: None), crm_refused("AUTHENTICATION_FAILED")),
        "malformed": Case(_crm_release(lambda w: {"a": 1}), crm_refused("AUTHENTICATION_FAILED")),
        "wrong": Case(_crm_release(lambda w: new_token()), crm_refused("AUTHENTICATION_FAILED")),
        # A live token of another tenant and another kind (rival's SyncTV session) releases
        # nothing: that session stays (the table is unchanged).
        "other_tenant": Case(
            _crm_release(lambda w: w.rival_synctv), crm_refused("AUTHENTICATION_FAILED")
        ),
        "expired": Case(
            _crm_release(lambda w: w.crm_expired), crm_refused("AUTHENTICATION_FAILED")
        ),
        "revoked": Case(
            _crm_release(lambda w: w.crm_released), crm_refused("AUTHENTICATION_FAILED")
        ),
    },
    # Public by design: a login refuses bad passwords and starts no session.
    CRM_LOGIN: {
        "none": Case(_crm_login(), crm_refused("INVALID_PARAMETER")),
        "malformed": Case(
            _crm_login(username=[DEMO_CRM_USER], password=12345, organisation="demo"),
            crm_refused("INVALID_PARAMETER"),
        ),
        "wrong": Case(
            _crm_login(username=DEMO_CRM_USER, password="not-the-password", organisation="demo"),
            crm_refused("AUTHENTICATION_FAILED"),
        ),
        # rival has a user of the same name: its password does not open demo's account.
        "other_tenant": Case(
            _crm_login(username=DEMO_CRM_USER, password=RIVAL_CRM_PASSWORD, organisation="demo"),
            crm_refused("AUTHENTICATION_FAILED"),
        ),
        "revoked": Case(
            _crm_login(username=FORMER_CRM_USER, password=FORMER_PASSWORD, organisation="demo"),
            crm_refused("AUTHENTICATION_FAILED"),
        ),
    },
    SYNCTV_LOGIN: {
        "none": Case(_synctv_login(b""), synctv_refused(-2)),
        "malformed": Case(
            _synctv_login(b"<session><email>admin@demo.example</email>", "application/xml"),
            synctv_refused(-2),
        ),
        "wrong": Case(
            _synctv_login(_form(email=DEMO_SYNCTV_ADMIN, password="not-the-password")),
            synctv_refused(-10),
        ),
        # rival's admin with demo's admin password, and demo's admin with rival's password.
        "other_tenant": Case(
            _synctv_login(_form(email=RIVAL_SYNCTV_ADMIN, password=DEMO_SYNCTV_PASSWORD)),
            synctv_refused(-10),
        ),
        "revoked": Case(
            _synctv_login(_form(email=FORMER_SYNCTV_USER, password=FORMER_PASSWORD)),
            synctv_refused(-10),
        ),
    },
    # Public by design and idempotent: any cookie that is not a live session logs out "fine"
    # and changes nothing. (rival's live session would be ended: a bearer token is its owner.)
    SYNCTV_LOGOUT: {
        "none": Case(_logout(lambda w: None), synctv_logged_out),
        "malformed": Case(_logout(lambda w: "x" * 1000), synctv_logged_out),
        "wrong": Case(_logout(lambda w: new_token()), synctv_logged_out),
        "revoked": Case(_logout(lambda w: w.synctv_ended), synctv_logged_out),
    },
    SYNCTV_INDEX: _synctv_admin_route(SYNCTV_INDEX),
    SYNCTV_SHOW: _synctv_admin_route(SYNCTV_SHOW),
    SYNCTV_CREATE: _synctv_admin_route(SYNCTV_CREATE),
    # validate: a live session, or else ``device``, names the tenant (public by design).
    SYNCTV_VALIDATE: {
        "none": Case(_validate(lambda w: None), synctv_refused(-2)),
        "malformed": Case(_validate(lambda w: None, device="x" * 1000), synctv_refused(-4)),
        "wrong": Case(
            _validate(lambda w: None, device="urn:synctv:devices:web:00000000"),
            synctv_refused(-4),
        ),
        # rival's device asks about demo's code: "invalid", as for a code that does not exist.
        "other_tenant": Case(_validate(lambda w: None, device=RIVAL_DEVICE), synctv_invalid_code),
        "expired": Case(_validate(lambda w: w.synctv_expired), synctv_refused(-2)),
        "revoked": Case(_validate(lambda w: w.synctv_ended), synctv_refused(-2)),
    },
}

PARAMETERS = [
    pytest.param(function, case, id=f"{function}-{case}")
    for function, cases in MATRIX.items()
    for case in cases
]


@pytest.fixture
def queued() -> Iterator[list[dict[str, Any]]]:
    """Messages the async route put on the queue (none may be put for a refused caller)."""
    sent: list[dict[str, Any]] = []
    use_sender(sent.append)
    yield sent
    use_sender(None)


def test_every_route_of_the_template_has_auth_cases() -> None:
    """A route added to template.yaml without a row here fails."""
    assert set(MATRIX) == set(ROUTES)
    for function, cases in MATRIX.items():
        assert set(cases) <= set(CASES), function
    print(f"\nauth matrix: {len(ROUTES)} routes, {len(PARAMETERS)} route x case checks")
    assert len(PARAMETERS) >= 75


@pytest.mark.parametrize(("function", "case"), PARAMETERS)
def test_bad_credentials_get_the_vendors_refusal_no_data_and_change_nothing(
    world: World, queued: list[dict[str, Any]], function: str, case: str
) -> None:
    entry = MATRIX[function][case]
    event = entry.build(world)
    before = scan(world)

    answer = call(function, event)

    entry.expect(answer)
    assert scan(world) == before, "a refused request changed the table"
    assert queued == [], "a refused request was queued"
    for marker in (*DEMO_DATA_MARKERS, *DEMO_CODES):
        assert marker not in answer.body
    for secret in world.secrets():
        assert secret not in answer.body
        assert all(secret not in value for value in answer.headers.values())
        assert all(secret not in cookie for cookie in answer.cookies)
    assert "Traceback" not in answer.body


# ---------------------------------------------------------------------- how secrets are kept


def test_secrets_are_stored_only_as_hashes(world: World) -> None:
    """No secret, token or session value, nor an unsalted hash of a password, is in the table;
    passwords are salted scrypt."""
    items = scan(world)
    dump = json.dumps(items)
    for secret in world.secrets():
        assert secret not in dump
    for password in (DEMO_CRM_PASSWORD, DEMO_SYNCTV_PASSWORD, DEMO_VIEWER_PASSWORD):
        assert hashlib.sha256(password.encode()).hexdigest() not in dump
    users = [i for i in items if i["pk"]["S"].startswith(("CRED#crm#", "CRED#synctv-user#"))]
    assert len(users) >= 5
    assert all(user["password_hash"]["S"].startswith("scrypt$") for user in users)
    # Generated tokens are found by their digest: the key holds the digest, not the token.
    assert any(token_digest(world.crm_token) in item["pk"]["S"] for item in items)
    assert any(token_digest(world.synctv_admin) in item["pk"]["S"] for item in items)


class CompareSpy:
    def __init__(self, real: Callable[[Any, Any], bool]) -> None:
        self.real = real
        self.calls: list[tuple[Any, Any]] = []

    def __call__(self, a: Any, b: Any) -> bool:
        self.calls.append((a, b))
        return self.real(a, b)


@pytest.fixture
def compare_spy(monkeypatch: pytest.MonkeyPatch) -> CompareSpy:
    # The very module object promo.secret_hashing compares with.
    hmac_module = vars(promo.secret_hashing)["hmac"]
    spy = CompareSpy(hmac_module.compare_digest)
    monkeypatch.setattr(hmac_module, "compare_digest", spy)
    return spy


SECRET_CHECKS: dict[str, tuple[str, Build]] = {
    "mews client token": (
        MEWS_GET_ALL,
        lambda w: json_event(
            MEWS_GET_ALL,
            mews_body(MewsPair("wrong-client", w.mews.access_token), Limitation={"Count": 1}),
        ),
    ),
    "maestra secret key": (
        MAESTRA_SYNC,
        lambda w: maestra_event(
            MAESTRA_SYNC, "IssuePromoCodeFromPool", _ISSUE_FROM_POOL, authorization="SecretKey no"
        ),
    ),
    "crm password": (
        CRM_LOGIN,
        _crm_login(username=DEMO_CRM_USER, password="not-it", organisation="demo"),
    ),
    "crm password of an unknown user": (
        CRM_LOGIN,
        _crm_login(username="nobody", password="not-it", organisation="demo"),
    ),
    "synctv password": (
        SYNCTV_LOGIN,
        _synctv_login(_form(email=DEMO_SYNCTV_ADMIN, password="not-it")),
    ),
    "synctv password of an unknown user": (
        SYNCTV_LOGIN,
        _synctv_login(_form(email="nobody@demo.example", password="not-it")),
    ),
}


@pytest.mark.parametrize("kind", SECRET_CHECKS)
def test_each_kind_of_secret_is_compared_in_constant_time(
    world: World, compare_spy: CompareSpy, kind: str
) -> None:
    function, build = SECRET_CHECKS[kind]
    answer = call(function, build(world))
    assert answer.status in (200, 400, 401)
    assert len(compare_spy.calls) == 1, compare_spy.calls
    presented, stored = compare_spy.calls[0]
    # Digests of equal length are compared, never the secret in clear.
    assert type(presented) is type(stored)
    assert len(presented) == len(stored)


def test_session_tokens_reach_the_store_only_as_digests(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CRM.COM tokens and SyncTV cookies are looked up by their SHA-256 (no comparison of the
    token itself happens anywhere, so there is nothing to time)."""
    from promo.store.table import Table

    keys: list[str] = []
    real_get = Table.get

    def spy(self: Table, key: Any, *args: Any, **kwargs: Any) -> Any:
        keys.append(json.dumps(key))
        return real_get(self, key, *args, **kwargs)

    monkeypatch.setattr(Table, "get", spy)
    call(
        SYNCTV_INDEX,
        request_event(SYNCTV_INDEX, path_parameters={"offer_id": "2"}, cookie=world.synctv_admin),
    )
    call(CRM_REQUEST, _crm_request(lambda w: w.crm_token)(world))
    lookups = "\n".join(keys)
    assert token_digest(world.synctv_admin) in lookups
    assert token_digest(world.crm_token) in lookups
    assert world.synctv_admin not in lookups
    assert world.crm_token not in lookups


# ---------------------------------------------------------------------- the matrix is not vacuous


LIVE: dict[str, Build] = {
    MEWS_GET_ALL: lambda w: json_event(MEWS_GET_ALL, mews_body(w.mews, Limitation={"Count": 5})),
    MAESTRA_SYNC: lambda w: maestra_event(
        MAESTRA_SYNC,
        "IssuePromoCodeFromPool",
        _ISSUE_FROM_POOL,
        authorization=f"SecretKey {w.maestra_key}",
    ),
    CRM_REQUEST: _crm_request(lambda w: w.crm_token),
    CRM_LOGIN: _crm_login(username=DEMO_CRM_USER, password=DEMO_CRM_PASSWORD, organisation="demo"),
    SYNCTV_LOGIN: _synctv_login(_form(email=DEMO_SYNCTV_ADMIN, password=DEMO_SYNCTV_PASSWORD)),
    SYNCTV_INDEX: lambda w: request_event(
        SYNCTV_INDEX, path_parameters={"offer_id": "2"}, cookie=w.synctv_admin
    ),
    SYNCTV_VALIDATE: _validate(lambda w: None, device="urn:synctv:devices:web:11223344"),
}


@pytest.mark.parametrize("function", LIVE)
def test_the_same_requests_with_live_credentials_succeed(world: World, function: str) -> None:
    """Control: the matrix's refusals come from the credential, not from a broken request."""
    answer = call(function, LIVE[function](world))
    assert answer.status == 200, answer.body
    if "json" in answer.headers["content-type"]:
        body = answer.json()
        status = body.get("status")
        assert status in ("Success", {"code": "OK", "description": "", "message": ""}) or (
            "VoucherCodes" in body
        ), body
    else:
        root = etree.fromstring(answer.body.encode())
        assert root.findtext("response/code") == "1"
