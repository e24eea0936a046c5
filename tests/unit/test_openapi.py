"""docs/openapi.yaml documents every route of template.yaml, and nothing else, and is valid."""

from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from tools.router import routes
from tools.template import ROOT

OPENAPI = ROOT / "docs" / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())
    return loaded


def documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }


def test_every_route_of_the_template_is_documented_and_nothing_else() -> None:
    in_template = {(route.method, route.path) for route in routes()}

    assert documented() - in_template == set()
    assert in_template - documented() == set()


def test_the_document_is_valid_openapi_3_1() -> None:
    spec = document()

    validate(spec)  # raises on an invalid document

    assert spec["openapi"].startswith("3.1")


@pytest.mark.parametrize(("method", "path"), sorted(documented()))
def test_every_operation_describes_its_errors_in_the_vendors_shape(method: str, path: str) -> None:
    operation = document()["paths"][path][method.lower()]
    error_statuses = [status for status in operation["responses"] if not status.startswith("2")]
    schemas = [
        str(content["schema"])
        for status in error_statuses
        for content in operation["responses"][status]["content"].values()
    ]
    vendor = {"Mews": "MewsError", "Maestra": "MaestraProtocolError", "CRM.COM": "CrmError"}
    expected = vendor.get(operation["tags"][0], "SyncTvError")

    assert error_statuses
    assert all(expected in schema for schema in schemas)


def test_xml_bodies_are_described_as_xml() -> None:
    spec = document()
    schemas = spec["components"]["schemas"]
    xml_contents = [
        content["schema"]
        for item in spec["paths"].values()
        for operation in item.values()
        for part in [operation.get("requestBody", {}), *operation["responses"].values()]
        for media, content in part.get("content", {}).items()
        if media == "application/xml"
    ]

    def root_name(schema: dict[str, Any]) -> str | None:
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        if "xml" in schema:
            return str(schema["xml"]["name"])
        return next((root_name(s) for s in schema.get("oneOf", [])), None)

    assert xml_contents
    assert {root_name(schema) for schema in xml_contents} == {
        "operation",
        "result",
        "session",
        "ssap",
    }
