"""API Gateway HTTP API (payload 2.0) events in, Lambda proxy responses out."""

import base64
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple


class HttpRequest(NamedTuple):
    """The parts of an HTTP API event a protocol reads, body decoded."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    query: dict[str, str]
    path_parameters: dict[str, str]
    cookies: dict[str, str]
    body: bytes
    request_id: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> "HttpRequest":
        http = event.get("requestContext", {}).get("http", {})
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
        cookies = {}
        for cookie in event.get("cookies") or []:
            name, _, value = cookie.partition("=")
            cookies[name.strip()] = value.strip()
        return cls(
            method=http.get("method", "GET").upper(),
            path=http.get("path") or event.get("rawPath", "/"),
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            query=dict(event.get("queryStringParameters") or {}),
            path_parameters=dict(event.get("pathParameters") or {}),
            cookies=cookies,
            body=body,
            request_id=event.get("requestContext", {}).get("requestId", ""),
        )

    def media_type(self, header: str) -> str:
        return self.headers.get(header, "").split(";", 1)[0].strip().lower()


class HttpResponse(NamedTuple):
    """What a handler answers, before it becomes a Lambda proxy response."""

    status: int
    body: bytes
    content_type: str
    cookies: tuple[str, ...] = ()
    headers: Mapping[str, str] = MappingProxyType({})

    def to_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {
            "statusCode": self.status,
            "headers": {"content-type": self.content_type, **self.headers},
            "body": self.body.decode(),
            "isBase64Encoded": False,
        }
        if self.cookies:
            event["cookies"] = list(self.cookies)
        return event
