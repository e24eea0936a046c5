"""What API Gateway and Lambda hand a handler: the HTTP API (payload 2.0) event and a context.

Used by the local stack to invoke handlers in-process exactly as deployed, and by the tests.
"""

import base64
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

API_ID = "local"


def http_api_event(
    method: str,
    path: str,
    route_key: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    raw_query: str = "",
) -> dict[str, Any]:
    """The event an HTTP API sends a Lambda proxy integration (payload format 2.0)."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    # Bytes that are not UTF-8 travel base64-encoded whatever the content type says, as
    # API Gateway sends any body it cannot pass as text.
    text_body = _is_text(headers.get("content-type", "")) and _is_utf8(body)
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": API_ID,
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "127",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16] + "=",
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not text_body and bool(body),
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode() if text_body else base64.b64encode(body).decode()
    return event


def _is_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        media.startswith("text/")
        or media.endswith(("json", "xml"))
        or media in ("application/x-www-form-urlencoded",)
    )


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: float = 10.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/promo-codes/local"
    log_stream_name: str = "local"
    _deadline: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True
