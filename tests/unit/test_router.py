"""The local router is driven by template.yaml alone."""

from pathlib import Path

import pytest

from tools.router import Router, routes
from tools.template import load_template, resources_of_type


def test_every_http_route_of_the_template_is_reachable_with_its_handler() -> None:
    router = Router()
    declared = [
        (event["Properties"]["Method"], event["Properties"]["Path"], name)
        for name, function in resources_of_type("AWS::Serverless::Function").items()
        for event in function["Properties"]["Events"].values()
        if event["Type"] == "HttpApi"
    ]

    assert declared
    for method, path, function in declared:
        found = router.find(method, path)
        assert found is not None, (method, path)
        route, _ = found
        assert route.function == function
        assert callable(router.handler(route))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/connector/v1/voucherCodes/getAll"),  # wrong method
        ("POST", "/api/connector/v1/vouchercodes/getall"),  # paths are case-sensitive
        ("POST", "/api/connector/v1/voucherCodes/getAll/"),
        ("POST", "/api/connector/v1/voucherCodes"),
    ],
)
def test_anything_else_is_not_found(method: str, path: str) -> None:
    assert Router().find(method, path) is None


def test_a_function_added_to_a_template_is_routed_with_path_parameters(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        """
Globals: {Function: {Handler: app.handler}}
Resources:
  Show:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/show/
      Events:
        Api: {Type: HttpApi, Properties: {Method: GET, Path: "/rest/v1/offers/{offer_id}/promo_codes/{id}"}}
  Validate:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/validate/
      Events:
        Api: {Type: HttpApi, Properties: {Method: GET, Path: "/rest/v1/offers/validate/promo_codes/{id}"}}
"""
    )
    load_template.cache_clear()
    try:
        router = Router(template)
        found = router.find("GET", "/rest/v1/offers/2/promo_codes/31")
        literal = router.find("GET", "/rest/v1/offers/validate/promo_codes/31")
    finally:
        load_template.cache_clear()

    assert found is not None
    assert found[0].function == "Show"
    assert found[1] == {"offer_id": "2", "id": "31"}
    assert literal is not None
    assert literal[0].function == "Validate"  # a literal segment beats a parameter
    assert (
        next(r.route_key for r in routes(template))
        == "GET /rest/v1/offers/validate/promo_codes/{id}"
    )
