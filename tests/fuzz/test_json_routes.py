"""Schemathesis against the local stack for the JSON routes: Mews getAll/add/delete, CRM.COM
login/release/request_promo_code and Maestra sync/async with application/json. Cases come from
docs/openapi.yaml as served by the stack, half schema-valid and half not, and about half carry
the demo credentials so that they get past authentication into validation and the domain."""

import copy
import random
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.fuzz import harness
from tests.fuzz.harness import Prepared, Stack
from tools.template import ROOT

pytestmark = pytest.mark.integration

MEWS = "/api/connector/v1/voucherCodes/"
CRM = "/crmapi/rest/v2/"


def test_the_stack_serves_the_checked_in_document(stack: Stack) -> None:
    as_yaml = requests.get(f"{stack.url}/openapi.yaml", timeout=10)
    as_json = requests.get(f"{stack.url}/openapi.json", timeout=10)

    assert as_yaml.status_code == 200
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert as_yaml.content == (ROOT / "docs" / "openapi.yaml").read_bytes()
    assert as_json.status_code == 200
    assert as_json.json() == harness.OPENAPI


def _mews(body: Any, draw: random.Random) -> Any:
    body = copy.deepcopy(body) if isinstance(body, dict) else {}
    body.update(harness.MEWS_TOKENS)
    if "EnterpriseId" in body or "EnterpriseIds" in body:
        body["EnterpriseId" if "EnterpriseId" in body else "EnterpriseIds"] = (
            harness.MEWS_ENTERPRISE if "EnterpriseId" in body else [harness.MEWS_ENTERPRISE]
        )
    for entry in body.get("VoucherCodeParameters") or []:
        if isinstance(entry, dict) and draw.random() < 0.8:
            entry["VoucherId"] = draw.choice(harness.MEWS_VOUCHERS)
    return body


def _crm(operation: str, body: Any, stack: Stack, draw: random.Random) -> Any:
    body = copy.deepcopy(body) if isinstance(body, dict) else {}
    if operation == "login":
        return {**body, **harness.CRM_LOGIN}
    if operation == "release":
        return {**body, "token": stack.crm_token_to_release}
    body["token"] = stack.crm_token
    if draw.random() < 0.5:
        body["promotion_campaign_identifier"] = draw.choice(harness.CRM_CAMPAIGNS)
    return body


ROUTES = {
    # route: (path, check, how credentials are put in)
    "mews getAll": (MEWS + "getAll", harness.mews_check("getAll")),
    "mews add": (MEWS + "add", harness.mews_check("add")),
    "mews delete": (MEWS + "delete", harness.mews_check("delete")),
    "crm login": (CRM + "authentication/token", harness.crm_check("login")),
    "crm release": (CRM + "authentication/token/release", harness.crm_check("release")),
    "crm request_promo_code": (
        CRM + "promotion_campaigns/request_promo_code",
        harness.crm_check("request"),
    ),
    "maestra sync json": ("/v3/operations/sync", harness.maestra_check(None)),
    "maestra async json": ("/v3/operations/async", harness.maestra_check(None)),
}


def prepare(route: str, case: Any, credentials: bool, stack: Stack, seed: int) -> Prepared:
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=stack.url)
    method, url = kwargs.pop("method"), kwargs.pop("url")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if credentials:
        draw = random.Random(seed)  # fixed, per case
        body = kwargs.pop("json", None)
        kwargs.pop("data", None)
        headers = dict(kwargs.get("headers") or {})
        headers["Content-Type"] = "application/json"
        if route.startswith("mews"):
            kwargs["json"] = _mews(body, draw)
        elif route.startswith("crm"):
            kwargs["json"] = _crm(route.split()[1], body, stack, draw)
        else:
            params = dict(kwargs.get("params") or {})
            params["endpointId"] = harness.MAESTRA_ENDPOINT
            params["operation"] = draw.choice(harness.MAESTRA_OPERATIONS)
            params.pop("endpoint", None)
            kwargs["params"] = params
            headers["Authorization"] = f"SecretKey {harness.MAESTRA_KEY}"
            kwargs["json"] = body if body is not None else {}
        kwargs["headers"] = headers
    return Prepared(method, url, kwargs)


@pytest.fixture(scope="module")
def schema(stack: Stack) -> Any:
    return schemathesis.openapi.from_url(f"{stack.url}/openapi.json")


# Maestra's sync and async routes take the same request (one documented shape for both), and
# derandomized generation draws the very same cases for both. The cases drawn for the first
# route to run are kept and sent to the other as they are, instead of being drawn again
# (generation, not the stack, is what a JSON route's time goes to).
SAME_REQUEST = {
    "maestra sync json": "maestra async json",
    "maestra async json": "maestra sync json",
}
_drawn: dict[str, list[tuple[Any, bool, int]]] = {}


@pytest.mark.parametrize("route", ROUTES)
def test_json_route_survives_fuzzing(route: str, stack: Stack, schema: Any) -> None:
    path, check = ROUTES[route]
    sender = harness.Sender(route, check)
    drawn = _drawn.get(SAME_REQUEST.get(route, ""))
    if drawn is not None:
        other = ROUTES[SAME_REQUEST[route]][0]
        for case, credentials, seed in drawn:
            prepared = prepare(route, case, credentials, stack, seed)
            assert prepared.url == stack.url + other
            sender.submit(Prepared(prepared.method, stack.url + path, prepared.kwargs))
        harness.assert_clean(sender)
        return

    operation = schema[path]["POST"]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, media_type="application/json"),
        operation.as_strategy(GenerationMode.NEGATIVE, media_type="application/json"),
    )
    kept: list[tuple[Any, bool, int]] = []

    @harness.fuzzed
    @given(case=cases, credentials=st.booleans(), seed=st.integers(0, 2**32))
    def generate(case: Any, credentials: bool, seed: int) -> None:
        sender.submit(prepare(route, case, credentials, stack, seed))
        kept.append((case, credentials, seed))

    generate()

    harness.assert_clean(sender)
    if route in SAME_REQUEST:
        _drawn[route] = kept
