"""HTTP routes read from template.yaml: a function added there is reachable locally as is."""

import importlib.util
import re
import sys
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from tools.template import ROOT, TEMPLATE, deployed


@dataclass(frozen=True)
class Route:
    function: str  # logical id in the template
    method: str
    path: str  # as in the template, e.g. /rest/v1/offers/{offer_id}/promo_codes
    code_uri: Path
    handler: str  # module.function, relative to code_uri

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}]+\})", self.path)
        regex = "".join(
            f"(?P<{part[1:-1].rstrip('+')}>{'.+' if part.endswith('+}') else '[^/]+'})"
            if part.startswith("{")
            else re.escape(part)
            for part in parts
        )
        return re.compile(f"^{regex}$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method and self.method != "ANY":
            return None
        found = self.pattern.match(path)
        return None if found is None else found.groupdict()


def _functions_triggered_by(event_type: str, template: Path) -> list[tuple[dict[str, Any], Route]]:
    """(event properties, route skeleton) for each event of that type, as the template deploys
    with its default parameters (the stream of the stack's own table, say)."""
    document = deployed(path=template)
    function_globals = document.get("Globals", {}).get("Function", {})
    found = []
    for name, resource in document["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        handler = properties.get("Handler", function_globals.get("Handler", "app.handler"))
        for event in properties.get("Events", {}).values():
            if event["Type"] == event_type:
                route = Route(name, "", "", ROOT / properties["CodeUri"], handler)
                found.append((event["Properties"], route))
    return found


def queue_consumers(template: Path = TEMPLATE) -> list[Route]:
    """Functions fed by an SQS queue (method "SQS", path the queue's logical id)."""
    return [
        replace(route, method="SQS", path=str(event["Queue"]["Fn::GetAtt"][0]))
        for event, route in _functions_triggered_by("SQS", template)
    ]


@dataclass(frozen=True)
class StreamConsumer:
    """A function fed by the table's change stream, with its event source mapping's settings."""

    route: Route
    batch_size: int
    max_retries: int
    # The mapping's filter patterns (JSON text each); a record matching none is dropped.
    patterns: tuple[str, ...]


def stream_consumers(template: Path = TEMPLATE) -> list[StreamConsumer]:
    """Functions fed by a DynamoDB stream (method "DynamoDB", path the table's logical id)."""
    found = []
    for event, route in _functions_triggered_by("DynamoDB", template):
        table = str(event["Stream"]["Fn::GetAtt"][0])
        filters = event.get("FilterCriteria", {}).get("Filters", [])
        found.append(
            StreamConsumer(
                replace(route, method="DynamoDB", path=table),
                int(event.get("BatchSize", 100)),
                int(event.get("MaximumRetryAttempts", -1)),
                tuple(str(f["Pattern"]) for f in filters),
            )
        )
    return found


def routes(template: Path = TEMPLATE) -> list[Route]:
    found = [
        replace(route, method=event["Method"].upper(), path=event["Path"])
        for event, route in _functions_triggered_by("HttpApi", template)
    ]
    # Literal segments win over parameters, as in API Gateway.
    return sorted(found, key=lambda r: (r.path.count("{"), -len(r.path)))


class Router:
    def __init__(self, template: Path = TEMPLATE) -> None:
        self.routes = routes(template)
        self.consumers = queue_consumers(template)
        self.stream_consumers = stream_consumers(template)
        self._modules: dict[Path, ModuleType] = {}

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None

    def handler(self, route: Route) -> Any:
        """The route's handler, imported from its CodeUri as Lambda would (module ``app``)."""
        module_name, function_name = route.handler.rsplit(".", 1)
        source = route.code_uri / f"{module_name.replace('.', '/')}.py"
        module = self._modules.get(source)
        if module is None:
            unique = f"_local_{route.function}_{module_name}"
            spec = importlib.util.spec_from_file_location(unique, source)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {source}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
            self._modules[source] = module
        return getattr(module, function_name)
