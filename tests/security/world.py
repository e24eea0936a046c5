"""The security tests' world: config/demo.yaml (tenant ``demo``) and fixtures/rival.yaml (tenant
``rival``) in one DynamoDB Local table, with a credential of every kind in every state (live,
expired, rotated out, revoked), and helpers to call any route of template.yaml as API Gateway
would and to compare the whole table before and after."""

import base64
import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from promo.domain import clock
from promo.domain.credentials import Session, User
from promo.protocols.crm import auth as crm_auth
from promo.protocols.synctv import auth as synctv_auth
from promo.protocols.synctv.auth import COOKIE_NAME
from promo.secret_hashing import hash_password, new_token, token_digest
from promo.services import Services
from promo.store import keys
from tests.support.deployment import Handler, invoke
from tools import admin
from tools.lambda_runtime import http_api_event
from tools.router import Route, Router, routes
from tools.template import ROOT

FIXTURES = Path(__file__).parent / "fixtures"

# Routes by template logical id, so a test names the operation, not the path.
MEWS_GET_ALL = "MewsGetAllFunction"
MEWS_ADD = "MewsAddFunction"
MEWS_DELETE = "MewsDeleteFunction"
MAESTRA_SYNC = "MaestraSyncFunction"
MAESTRA_ASYNC = "MaestraAsyncFunction"
CRM_LOGIN = "CrmLoginFunction"
CRM_LOGOUT = "CrmLogoutFunction"
CRM_REQUEST = "CrmRequestPromoCodeFunction"
SYNCTV_LOGIN = "SyncTvLoginFunction"
SYNCTV_LOGOUT = "SyncTvLogoutFunction"
SYNCTV_INDEX = "SyncTvIndexFunction"
SYNCTV_SHOW = "SyncTvShowFunction"
SYNCTV_CREATE = "SyncTvCreateFunction"
SYNCTV_VALIDATE = "SyncTvValidateFunction"

ROUTES: dict[str, Route] = {route.function: route for route in routes()}
_ROUTER = Router()

# Demo's public values (config/demo.yaml) and rival's (fixtures/rival.yaml).
DEMO_ENTERPRISE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
RIVAL_ENTERPRISE = "4d0201db-36f5-428b-8d11-4f0a65e960cc"
DEMO_SPRING_VOUCHER = "fe568bbd-1ecb-4bb2-bf77-96c3698de20d"
DEMO_WELCOME_VOUCHER = "8c364829-c7ae-4972-b67f-93ea704d7228"
RIVAL_VOUCHER = "5a4e0c3b-7f1d-4e2a-9b8c-6d5e4f3a2b1c"
DEMO_MAESTRA_KEY = "demo-maestra-secret-key"
RIVAL_MAESTRA_KEY = "rival-maestra-secret-key"
DEMO_CRM_USER, DEMO_CRM_PASSWORD = "MPAdministrator", "demo-crm-password"
RIVAL_CRM_PASSWORD = "rival-crm-password"
DEMO_SYNCTV_ADMIN, DEMO_SYNCTV_PASSWORD = "admin@demo.example", "demo-synctv-password"
DEMO_SYNCTV_VIEWER, DEMO_VIEWER_PASSWORD = "viewer@demo.example", "demo-viewer-password"
RIVAL_SYNCTV_ADMIN, RIVAL_SYNCTV_PASSWORD = "admin@rival.example", "rival-synctv-password"
FORMER_CRM_USER, FORMER_SYNCTV_USER = "FormerUser", "former@demo.example"
FORMER_PASSWORD = "former-user-password"
DEMO_DEVICE = "urn:synctv:devices:web:11223344"
RIVAL_DEVICE = "urn:synctv:devices:web:55667788"
DEMO_MEWS = (
    "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
    "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
)
RIVAL_MEWS = (
    "RIVAL0CLIENT0TOKEN0000000000000000-0000000000000000000000000000001",
    "RIVAL0ACCESS0TOKEN0000000000000000-0000000000000000000000000000002",
)
DEMO_OFFER, DEMO_WELCOME_OFFER, RIVAL_OFFER = 2, 1020, 7
DEMO_CODES = [
    "SPRING-7KQ3",
    "SPRING-M4XR",
    "SPRING-P9TW",
    "SPRING-HN62",
    "SPRING-V8DC",
    "SPRING-3JBF",
    "SPRING-QZ5A",
    "SPRING-T7RK",
    "SPRING-C2YN",
    "SPRING-W6MH",
    "WELCOME-4F7Q",
    "WELCOME-9KD2",
    "WELCOME-R3XM",
]
RIVAL_CODES = ("RIVAL-0001", "RIVAL-0002", "RIVAL-0003")
# Words that only appear in an answer that leaked demo's data.
DEMO_DATA_MARKERS = ("SPRING-", "WELCOME-", "Spring sale", "Welcome gift", "Bulk Generation 4")


@dataclass(frozen=True)
class MewsPair:
    client_token: str
    access_token: str


@dataclass
class World:
    """One table holding both tenants, and every credential the tests present."""

    svc: Services
    table_name: str
    maestra_key: str  # demo-website's live key (rotated at setup)
    maestra_old_key: str  # its previous key, no longer valid
    maestra_revoked: tuple[str, str]  # (endpoint, key) of an endpoint that was removed
    mews: MewsPair
    mews_rotated: MewsPair
    mews_revoked: MewsPair
    rival_mews: MewsPair
    crm_token: str
    crm_expired: str
    crm_released: str
    rival_crm_token: str
    synctv_admin: str
    synctv_viewer: str
    synctv_expired: str
    synctv_ended: str
    rival_synctv: str
    code_uuids: dict[str, str] = field(default_factory=dict)  # demo value -> Mews Id
    code_numbers: dict[str, int] = field(default_factory=dict)  # demo value -> integer id

    def secrets(self) -> list[str]:
        """Every secret, token and session value a test may present: none may leak."""
        return [
            DEMO_MAESTRA_KEY,
            RIVAL_MAESTRA_KEY,
            self.maestra_key,
            self.maestra_revoked[1],
            DEMO_CRM_PASSWORD,
            RIVAL_CRM_PASSWORD,
            DEMO_SYNCTV_PASSWORD,
            DEMO_VIEWER_PASSWORD,
            RIVAL_SYNCTV_PASSWORD,
            FORMER_PASSWORD,
            *DEMO_MEWS,
            *RIVAL_MEWS,
            *(getattr(self, name).client_token for name in ("mews_rotated", "mews_revoked")),
            *(getattr(self, name).access_token for name in ("mews_rotated", "mews_revoked")),
            self.crm_token,
            self.crm_expired,
            self.crm_released,
            self.rival_crm_token,
            self.synctv_admin,
            self.synctv_viewer,
            self.synctv_expired,
            self.synctv_ended,
            self.rival_synctv,
        ]


def _session(svc: Services, kind: str, tenant: str, user: str, admin_: bool, ttl: float) -> str:
    token = new_token()
    expires = clock.now() + timedelta(seconds=ttl)
    svc.credentials.start_session(token, Session(kind, tenant, user, admin_, expires))
    return token


def build_world(svc: Services, table_name: str) -> World:
    admin.apply_config(ROOT / "config" / "demo.yaml", svc)
    admin.apply_config(FIXTURES / "rival.yaml", svc)
    # Maestra: rotate demo-website's key (the config's key becomes the expired one), and add
    # then remove an endpoint whose key a client may still hold.
    live_key = admin.set_maestra_key(svc, "demo-website")
    endpoint = svc.credentials.maestra_endpoint("demo-website")
    assert endpoint is not None
    kiosk_key = new_token()
    svc.credentials.put_maestra_endpoint(
        endpoint._replace(endpoint_id="demo-kiosk", secret_key_digest=token_digest(kiosk_key))
    )
    svc.credentials.revoke("maestra", "demo-kiosk")
    # Mews: a token rotated out, and a token revoked.
    rotating = admin.create_mews_token(svc, "demo-rotating", ["demo"])
    admin.rotate_mews_token(svc, "demo-rotating")
    revoked = admin.create_mews_token(svc, "demo-revoked", ["demo"])
    admin.revoke_mews_token(svc, "demo-revoked")
    # CRM.COM: a live token per tenant, one expired, one released.
    lifetime = timedelta(seconds=svc.settings.crm_token_seconds)
    crm_token = crm_auth.login(svc.credentials, "demo", DEMO_CRM_USER, DEMO_CRM_PASSWORD, lifetime)
    rival_crm = crm_auth.login(
        svc.credentials, "rival", DEMO_CRM_USER, RIVAL_CRM_PASSWORD, lifetime
    )
    crm_released = crm_auth.login(
        svc.credentials, "demo", DEMO_CRM_USER, DEMO_CRM_PASSWORD, lifetime
    )
    crm_auth.release(svc.credentials, crm_released)
    crm_expired = _session(svc, "crm", "demo", DEMO_CRM_USER, False, -60)
    # SyncTV: live admin, viewer and rival sessions, one expired, one ended by logout.
    hour = timedelta(hours=1)
    start = synctv_auth.start_session
    synctv_admin, _ = start(svc.credentials, DEMO_SYNCTV_ADMIN, DEMO_SYNCTV_PASSWORD, hour)
    viewer, _ = start(svc.credentials, DEMO_SYNCTV_VIEWER, DEMO_VIEWER_PASSWORD, hour)
    rival_synctv, _ = start(svc.credentials, RIVAL_SYNCTV_ADMIN, RIVAL_SYNCTV_PASSWORD, hour)
    ended, _ = start(svc.credentials, DEMO_SYNCTV_ADMIN, DEMO_SYNCTV_PASSWORD, hour)
    synctv_auth.end_session(svc.credentials, ended)
    expired = _session(svc, "synctv", "demo", DEMO_SYNCTV_ADMIN, True, -60)
    # Users removed from the configuration: their passwords must stop working.
    for kind, username in (("crm", FORMER_CRM_USER), ("synctv-user", FORMER_SYNCTV_USER)):
        svc.credentials.put_user(kind, User("demo", username, hash_password(FORMER_PASSWORD)))
        svc.credentials.revoke(kind, f"demo#{username}" if kind == "crm" else username)
        assert svc.credentials.user(kind, "demo", username) is None
    world = World(
        svc=svc,
        table_name=table_name,
        maestra_key=live_key,
        maestra_old_key=DEMO_MAESTRA_KEY,
        maestra_revoked=("demo-kiosk", kiosk_key),
        mews=MewsPair(*DEMO_MEWS),
        mews_rotated=MewsPair(rotating.client_token, rotating.access_token),
        mews_revoked=MewsPair(revoked.client_token, revoked.access_token),
        rival_mews=MewsPair(*RIVAL_MEWS),
        crm_token=crm_token,
        crm_expired=crm_expired,
        crm_released=crm_released,
        rival_crm_token=rival_crm,
        synctv_admin=synctv_admin,
        synctv_viewer=viewer,
        synctv_expired=expired,
        synctv_ended=ended,
        rival_synctv=rival_synctv,
    )
    for pool_id in ("spring", "welcome"):
        for _, code in svc.codes.list("demo", [pool_id]):
            world.code_uuids[code.value] = str(code.uuid)
            world.code_numbers[code.value] = code.number
    return world


# ---------------------------------------------------------------------- the table


def scan(world: World, counters: bool = False) -> list[dict[str, Any]]:
    """Every item of the table, every attribute, in key order; without validate's
    failed-validation counters unless ``counters``: a -45 adds one to its own caller's counter
    (docs/security.md, threat 20), which is neither a code nor a credential. Where counters
    must stay in the caller's tenant, ``miss_counters`` checks them."""
    items: list[dict[str, Any]] = []
    for page in world.svc.codes.table.client.get_paginator("scan").paginate(
        TableName=world.table_name, ConsistentRead=True
    ):
        items.extend(page["Items"])
    if not counters:
        items = [item for item in items if not item["pk"]["S"].startswith(keys.MISSES_PREFIX)]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def miss_counters(world: World) -> dict[str, int]:
    """Failed-validation counters by key: how many -45 answers each caller got per window."""
    return {
        item["pk"]["S"]: int(item["misses"]["N"])
        for item in scan(world, counters=True)
        if item["pk"]["S"].startswith(keys.MISSES_PREFIX)
    }


# ---------------------------------------------------------------------- calling routes


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str
    cookies: list[str]

    def json(self) -> Any:
        return json.loads(self.body)


def handler(function: str) -> Handler:
    handle: Handler = _ROUTER.handler(ROUTES[function])
    return handle


def request_event(
    function: str,
    *,
    body: bytes = b"",
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    cookie: str | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """The HTTP API event for a request to ``function``'s route."""
    route = ROUTES[function]
    path = route.path
    for name, value in (path_parameters or {}).items():
        path = path.replace("{" + name + "}", value)
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["content-type"] = content_type
    if cookie is not None:
        all_headers["cookie"] = f"{COOKIE_NAME}={cookie}"
    raw_query = urlencode(query or {})
    event = http_api_event(
        route.method,
        path,
        route.route_key,
        b"" if base64_body else body,
        all_headers,
        query,
        path_parameters,
        raw_query,
    )
    if base64_body and body:
        # API Gateway hands bodies that are not valid text to Lambda base64-encoded.
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
    return event


def call(function: str, event: dict[str, Any]) -> Answer:
    response = invoke(handler(function), event, function)
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    return Answer(
        response["statusCode"], headers, response.get("body", ""), response.get("cookies", [])
    )


def json_event(function: str, document: Any, **kwargs: Any) -> dict[str, Any]:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return request_event(function, body=raw, content_type="application/json", **kwargs)


def mews_body(pair: MewsPair | None, **fields: Any) -> dict[str, Any]:
    tokens = {} if pair is None else {"ClientToken": pair.client_token}
    if pair is not None:
        tokens["AccessToken"] = pair.access_token
    return {**tokens, "Client": "Security Tests 1.0", **fields}


def maestra_event(
    function: str,
    operation: str,
    document: Any,
    *,
    endpoint: str = "demo-website",
    authorization: str | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    headers = {} if authorization is None else {"authorization": authorization}
    query = {"endpointId": endpoint, "operation": operation, "deviceUUID": ""}
    return request_event(
        function, body=raw, content_type=content_type, headers=headers, query=query
    )
