"""Run handlers as deployed: environment set, process-wide caches fresh; ``event()`` reads the
vendors' own example requests (tests/protocol/fixtures/events/, the events/ of before they were
remade for config/demo.yaml)."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promo import aws, bootstrap
from promo.event_bus import Publisher
from promo.queue import QueueSender, Sender
from promo.services import Services
from tools.lambda_runtime import LambdaContext, http_api_event
from tools.template import ROOT

EVENTS = ROOT / "tests" / "protocol" / "fixtures" / "events"
FIXTURES = ROOT / "tests" / "protocol" / "fixtures"


def cold_start(**changes: object) -> Services:
    """A new function instance: services built afresh (no cache of the old one kept) from the
    current settings, with ``changes`` (by field name) applied."""
    settings = bootstrap.services().settings.model_copy(update=changes)
    fresh = bootstrap.bootstrap(settings)
    bootstrap.install(fresh)
    return fresh


def use_sender(sender: Sender | None) -> None:
    """Queue asynchronous operations through ``sender`` (None: through SQS, as configured)."""
    svc = bootstrap.services()
    bootstrap.install(svc._replace(send=sender or QueueSender(svc.settings, aws.get_session())))


def use_publisher(publish: Publisher) -> None:
    """Publish domain events through ``publish`` instead of EventBridge."""
    bootstrap.install(bootstrap.services()._replace(publish=publish))


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


__all__ = [
    "cold_start",
    "event",
    "fixture",
    "invoke",
    "json_body",
    "post_json",
    "use_publisher",
    "use_sender",
]
