"""Run handlers as deployed: environment set, process-wide caches fresh, events from events/."""

import json
from collections.abc import Callable
from functools import _lru_cache_wrapper
from pathlib import Path
from typing import Any

import promo.aws
import promo.observability
import promo.services
import promo.settings
import promo.store
import promo.store.client
from tools.lambda_runtime import LambdaContext, http_api_event
from tools.template import ROOT

EVENTS = ROOT / "events"
FIXTURES = ROOT / "tests" / "protocol" / "fixtures"

_PROCESS_CACHES: list["_lru_cache_wrapper[Any]"] = [
    promo.settings.get_settings,
    promo.aws.session,
    promo.store.client.dynamodb,
    promo.store._table,
    promo.store.code_store,
    promo.store.catalog_store,
    promo.store.credential_store,
    promo.store.attempt_store,
    promo.services.services,
    promo.observability.metrics,
]


def cold_start() -> None:
    """Forget every process-wide object, as a new Lambda instance would start without them."""
    for cached in _PROCESS_CACHES:
        cached.cache_clear()


def event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return loaded


def fixture_path(path: str) -> Path:
    return FIXTURES / path


def fixture(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def invoke(handler: Handler, event: dict[str, Any], function_name: str = "test") -> dict[str, Any]:
    return handler(event, LambdaContext(function_name))


def post_json(path: str, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http_api_event(
        "POST",
        path,
        f"POST {path}",
        raw,
        headers={"content-type": "application/json", **(headers or {})},
    )


def json_body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


__all__ = ["cold_start", "event", "fixture", "invoke", "json_body", "post_json"]
