"""The CRM.COM world of the tests: config/demo.yaml (the spec example's campaign and user) and
calls to the three CRM.COM handlers as API Gateway would make them."""

import json
from collections import Counter
from typing import Any

import promo.bootstrap
from functions.crm_login.app import handler as login_handler
from functions.crm_logout.app import handler as release_handler
from functions.crm_request_promo_code.app import handler as request_handler
from promo.domain.models import CrmCampaign, NewCode, Pool, PoolAliases
from promo.services import Services
from tests.support.builders import ACTOR
from tests.support.deployment import Handler, event, invoke, json_body, post_json
from tests.support.tables import Stores
from tools.admin import apply_config
from tools.template import ROOT

BASE = "/crmapi/rest/v2"
LOGIN = f"{BASE}/authentication/token"
RELEASE = f"{BASE}/authentication/token/release"
REQUEST = f"{BASE}/promotion_campaigns/request_promo_code"
HANDLERS: dict[str, Handler] = {
    LOGIN: login_handler,
    RELEASE: release_handler,
    REQUEST: request_handler,
}

ORGANISATION = "demo"
USERNAME = "MPAdministrator"
PASSWORD = "demo-crm-password"
SPEC_CAMPAIGN = {"id": "DDA3E17570FE4BEFB1550BD1C63389E7", "name": "Bulk Generation 4"}
SPEC_POOL = "spring"  # the demo pool behind the spec's campaign (BG4)
WELCOME_POOL = "welcome"  # the demo's second campaign (WLC), three codes
SPEC_RECIPIENT = {"rewards_participant_identifier": {"number": "RP0000000618"}}


def seed_demo() -> Services:
    """The services the handlers use, over a table holding config/demo.yaml."""
    svc = promo.bootstrap.services()
    apply_config(ROOT / "config" / "demo.yaml", svc)
    return svc


def call(path: str, body: Any, query: dict[str, str] | None = None) -> tuple[int, Any]:
    request = post_json(path, body)
    if query:
        request["queryStringParameters"] = query
    response = invoke(HANDLERS[path], request)
    assert response["headers"]["content-type"].startswith("application/json")
    return response["statusCode"], json_body(response)


def login(
    username: str = USERNAME, password: str = PASSWORD, organisation: str = ORGANISATION
) -> str:
    status, body = call(
        LOGIN, {"username": username, "password": password, "organisation": organisation}
    )
    assert (status, body["status"]["code"]) == (200, "OK"), body
    token: str = body["data"]["token"]
    return token


def request_code(token: str | None, **parameters: Any) -> tuple[int, Any]:
    body: dict[str, Any] = {
        "promotion_campaign_identifier": {"alternative_code": "BG4"},
        **SPEC_RECIPIENT,
    }
    body.update(parameters)
    if token is not None:
        body["token"] = token
    return call(REQUEST, body)


def spec_event(token: str) -> dict[str, Any]:
    """tests/protocol/fixtures/events/crm_request_promo_code.json (the page's example) carrying
    a live token."""
    example = event("crm_request_promo_code")
    body = json.loads(example["body"])
    assert body["token"] == "{{token}}"
    example["body"] = json.dumps({**body, "token": token})
    return example


def states(svc: Services, pool_id: str, tenant_id: str = ORGANISATION) -> Counter[str]:
    return Counter(str(code.state) for _, code in svc.codes.list(tenant_id, [pool_id]))


def campaign_pool(
    stores: Stores,
    pool_id: str,
    codes: int = 1,
    tenant_id: str = ORGANISATION,
    **campaign: str,
) -> Pool:
    """A pool named by a CRM campaign (``campaign`` overrides its fields), with ``codes`` codes."""
    crm = CrmCampaign(id=f"{pool_id.upper()}-ID", name=f"{pool_id} campaign")
    pool = Pool(
        tenant_id,
        pool_id,
        f"{pool_id} pool",
        aliases=PoolAliases(crm_campaign=crm._replace(**campaign)),
    )
    stores.catalog.put_pool(pool)
    new = [NewCode(pool_id, f"{pool_id.upper()}-{i:03d}") for i in range(codes)]
    if new:
        stores.codes.add(tenant_id, {pool_id: pool}, new, ACTOR)
    return pool
