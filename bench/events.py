"""The API Gateway events the bench sends the handlers, as Lambda receives them."""

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode


def maestra_event(
    operation: str, body: dict[str, Any], transaction: str | None = None
) -> dict[str, Any]:
    """A Maestra ``/v3/operations/sync`` call of the bench endpoint's ``operation``."""
    from tools.lambda_runtime import http_api_event

    query = {"endpointId": "bench-endpoint", "operation": operation, "deviceUUID": ""}
    if transaction is not None:
        query["transactionId"] = transaction
    return http_api_event(
        "POST",
        "/v3/operations/sync",
        "POST /v3/operations/sync",
        json.dumps(body).encode(),
        {"content-type": "application/json", "authorization": "SecretKey bench-maestra-secret-key"},
        query,
        None,
        urlencode(query),
    )


def maestra_issue_event(pool: str, customer: str = "1") -> dict[str, Any]:
    body = {
        "customer": {"ids": {"webSiteUserId": customer}},
        "promoCode": {"pool": {"ids": {"externalId": pool}}},
    }
    return maestra_event("IssueFromPool", body)


def maestra_code_event(operation: str, value: str) -> dict[str, Any]:
    """A Maestra operation on one code, by value (redeem, rollback)."""
    body = {"customer": {"ids": {"webSiteUserId": "1"}}, "promoCode": {"ids": {"value": value}}}
    return maestra_event(operation, body)


def validate_event(code: str) -> dict[str, Any]:
    from tools.lambda_runtime import http_api_event

    query = {"device": "urn:synctv:devices:bench:1", "code": code}
    return http_api_event(
        "GET",
        "/rest/v1/promo_codes/validate",
        "GET /rest/v1/promo_codes/validate",
        b"",
        {},
        query,
        None,
        urlencode(query),
    )


def mews_add_event(values: list[str]) -> dict[str, Any]:
    from tools.lambda_runtime import http_api_event

    body = {
        "ClientToken": "bench-client-token",
        "AccessToken": "bench-access-token-0123456789",
        "Client": "bench",
        "VoucherCodeParameters": [
            {"VoucherId": "5c0e6f1a-2b3c-4d5e-8f6a-7b8c9d0e1f2a", "Value": v} for v in values
        ],
    }
    return http_api_event(
        "POST",
        "/api/connector/v1/voucherCodes/add",
        "POST /api/connector/v1/voucherCodes/add",
        json.dumps(body).encode(),
        {"content-type": "application/json"},
    )


def invoke(handler: Callable[..., dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
    from tools.lambda_runtime import LambdaContext

    return handler(event, LambdaContext("bench"))
