"""SyncTV REST v1 (``<ssap>`` XML): an offer's promo codes (index, show, create),
``promo_codes/validate`` and the REST Session handshake (login, logout).

Contract: shared/specs/synctv-promo-codes.txt; choices where it is silent: docs/protocols/synctv.md.
Arguments come from the query string, a form or XML body and the path, merged as Rails merges
``params``; answers are ``<ssap>`` documents with a ``<response>`` carrying SyncTV's ``code``.
"""

import re
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple
from urllib.parse import parse_qsl

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, model_validator

from promo.auth.synctv import (
    SyncTvCaller,
    Visitor,
    admin,
    expired_cookie,
    session_cookie,
    session_or_device,
    visitor,
)
from promo.bootstrap import services
from promo.codecs import json as json_codec
from promo.codecs import xml
from promo.codecs.errors import ErrorTable
from promo.domain import clock
from promo.domain.errors import (
    AuthenticationFailed,
    CodeNotFound,
    CodeSpaceExhausted,
    DeviceNotFound,
    DuplicateValues,
    Forbidden,
    InvalidRequest,
    MalformedRequest,
    PoolNotFound,
    PromoError,
    StoreUnavailable,
    TooManyAttempts,
)
from promo.domain.models import Code
from promo.endpoint import LambdaHandler, lambda_endpoint
from promo.http import HttpRequest, HttpResponse
from promo.observability import logger
from promo.services import CodePage, Services
from promo.store.credentials import CredentialStore

VERSION = "0.5"
SUCCESS = 1
# validate: "the promo code is invalid or has been consumed" (the spec's only negative code).
INVALID_PROMO_CODE = -45
DEFAULT_PAGE_SIZE = 25  # SyncTV V2's documented page size
MAX_PAGE_SIZE = 100
MAX_FORM_BYTES = 64 * 1024
_XML = "application/xml; charset=utf-8"
_COMPLETED = "Successfully completed."


class _Model(BaseModel):
    # Rails ignores parameters an action does not use (format, utf8, a device on index...).
    # Built by the endpoint that validates with it (json_codec.built), not by every function.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class OfferRequest(_Model):
    offer_id: int = Field(ge=1, le=2**63 - 1)


class IndexRequest(OfferRequest):
    consumed: bool | None = None
    offset: int = Field(default=0, ge=0, le=2**31)
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class ShowRequest(OfferRequest):
    id: int = Field(ge=1, le=2**63 - 1)


class CreateRequest(OfferRequest):
    count: int = Field(default=1, ge=1, le=100)
    length: int = Field(default=6, ge=6, le=10)


class ValidateRequest(_Model):
    code: str = Field(min_length=1, max_length=256)
    device: str | None = None


class LoginRequest(_Model):
    email: str | None = Field(default=None, min_length=1, max_length=256)
    username: str | None = Field(default=None, min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _someone(self) -> "LoginRequest":
        if self.email is None and self.username is None:
            raise ValueError("email is required")
        return self

    @property
    def login(self) -> str:
        return self.email or self.username or ""


class LogoutRequest(_Model):
    pass


# ---------------------------------------------------------------------- parsing


_NESTED = re.compile(r"^[A-Za-z_]\w*\[(\w+)\]$")


def parameters(request: HttpRequest) -> dict[str, str]:
    """Query string, then a form or XML body, then path parameters (the path wins). Rails-style
    nested names (``session[email]``) count as the inner name when that is not given itself."""
    merged = {**request.query, **_body_parameters(request)}
    for name, value in list(merged.items()):
        nested = _NESTED.match(name)
        if nested is not None:
            merged.setdefault(nested.group(1), value)
    return {**merged, **request.path_parameters}


def _body_parameters(request: HttpRequest) -> dict[str, str]:
    media = request.media_type("content-type")
    if not request.body.strip():
        return {}
    if media == "application/x-www-form-urlencoded":
        if len(request.body) > MAX_FORM_BYTES:
            raise MalformedRequest(f"Form body larger than {MAX_FORM_BYTES} bytes.")
        try:
            pairs = parse_qsl(request.body.decode(), keep_blank_values=True, max_num_fields=64)
        except (UnicodeDecodeError, ValueError):
            raise MalformedRequest("Malformed form body.") from None
        return dict(pairs)
    if media in ("application/xml", "text/xml"):
        # <session><email>…</email><password>…</password></session>: one level, as Rails reads it
        root = xml.parse(request.body)
        return {
            str(node.tag): xml.child_text(root, str(node.tag)) or ""
            for node in root
            if isinstance(node.tag, str)
        }
    return {}  # other bodies carry nothing SyncTV reads


# ---------------------------------------------------------------------- rendering


class Reply(NamedTuple):
    """An ``<ssap>`` answer, with the cookies to set alongside it."""

    document: etree._Element
    cookies: tuple[str, ...] = ()


def _response(parent: etree._Element, count: int, code: int, message: str) -> None:
    response = xml.child(parent, "response")
    xml.child(response, "count", count)
    xml.child(response, "code", code)
    xml.child(response, "message", message)


def _stamp(moment: datetime | None) -> str:
    return "" if moment is None else clock.format_iso8601(moment)


def promo_code(parent: etree._Element, code: Code, offer_id: int) -> etree._Element:
    """One ``<promo_code>``; ``consumed_on``/``consumed_by`` are empty until it is redeemed."""
    node = xml.child(parent, "promo_code")
    xml.child(node, "id", code.number)
    xml.child(node, "created_at", _stamp(code.audit.created_at))
    xml.child(node, "code", code.value)
    xml.child(node, "offer_id", offer_id)
    xml.child(node, "consumed_on", _stamp(code.used_at))
    xml.child(node, "consumed_by", code.used_by or "")
    return node


def index(page: CodePage, offer_id: int) -> Reply:
    """``<count>`` is the number of promo codes in this answer (see docs on paging)."""
    root = etree.Element("ssap")
    _response(root, len(page.codes), SUCCESS, _COMPLETED)
    codes = xml.child(root, "promo_codes", type="array")
    for code in page.codes:
        promo_code(codes, code, offer_id)
    xml.child(root, "version", VERSION)
    return Reply(root)


def show(code: Code, offer_id: int) -> Reply:
    root = etree.Element("ssap")
    promo_code(root, code, offer_id)
    _response(root, 1, SUCCESS, _COMPLETED)
    xml.child(root, "version", VERSION)
    return Reply(root)


def created() -> Reply:
    """As the spec's example: ``count`` 1 whatever ``count`` asked for (no codes are returned)."""
    return _completed(count=1)


def validated(valid: bool) -> Reply:
    """The example's shape exactly: ``code``, ``message``, ``count``; no ``version``."""
    root = etree.Element("ssap")
    response = xml.child(root, "response")
    if valid:
        xml.child(response, "code", SUCCESS)
        xml.child(response, "message", "Successfully completed")
    else:
        xml.child(response, "code", INVALID_PROMO_CODE)
        xml.child(response, "message", "The promo code is invalid or has been consumed.")
    xml.child(response, "count", 0)
    return Reply(root)


def session_started(token: str, lifetime_seconds: int, caller: Visitor) -> Reply:
    completed = _completed(count=0)
    cookie = session_cookie(token, lifetime_seconds, caller.secure)
    return Reply(completed.document, (cookie,))


def session_ended(caller: Visitor) -> Reply:
    return Reply(_completed(count=0).document, (expired_cookie(caller.secure),))


def _completed(count: int) -> Reply:
    root = etree.Element("ssap")
    _response(root, count, SUCCESS, _COMPLETED)
    xml.child(root, "version", VERSION)
    return Reply(root)


# ---------------------------------------------------------------------- errors


class SyncTvError(NamedTuple):
    status: int
    code: int
    # None: the refusal's own message.
    message: str | None = None


UNEXPECTED = SyncTvError(500, -1, "An unexpected error occurred; the request may be retried.")

# Every refusal is HTTP 400 with a negative code, as SyncTV documents for its API ("On Error:
# HTTP 400"), except the validate limit's 429 (the status API Gateway's own throttling answers);
# -2 and -4 are SyncTV's own codes, the others are ours (docs/protocols/synctv.md).
ERRORS: ErrorTable[SyncTvError] = ErrorTable(
    {
        InvalidRequest: SyncTvError(400, -2),  # ARGUMENT_MISSING: missing or invalid argument
        MalformedRequest: SyncTvError(400, -2),
        DeviceNotFound: SyncTvError(400, -4),  # RECORD_NOT_FOUND, as for an unknown client key
        PoolNotFound: SyncTvError(400, -4, "Offer not found."),
        CodeNotFound: SyncTvError(400, -4),
        AuthenticationFailed: SyncTvError(400, -10),
        Forbidden: SyncTvError(400, -11),
        DuplicateValues: SyncTvError(400, -20, "Promo codes could not be generated; retry."),
        CodeSpaceExhausted: SyncTvError(400, -20),
        # The same body whatever the code asked about: it says nothing about the code.
        TooManyAttempts: SyncTvError(429, -30, "Too many invalid promo codes; try again later."),
        StoreUnavailable: UNEXPECTED,
        PromoError: SyncTvError(400, -2),
    },
    fallback=UNEXPECTED,
)


def error(answer: SyncTvError, message: str, headers: dict[str, str] | None = None) -> HttpResponse:
    root = etree.Element("ssap")
    _response(root, 0, answer.code, answer.message or message)
    xml.child(root, "version", VERSION)
    return HttpResponse(answer.status, xml.render(root), _XML, headers=headers or {})


def _error_headers(refused: PromoError) -> dict[str, str]:
    if isinstance(refused, TooManyAttempts):
        return {"retry-after": str(refused.retry_after)}
    return {}


def _unexpected(request: HttpRequest) -> HttpResponse:
    return error(UNEXPECTED, "")


def endpoint[M: BaseModel, C](
    model: type[M], authenticate: Callable[[CredentialStore, HttpRequest], C]
) -> Callable[[Callable[[M, C, Services], Reply]], LambdaHandler]:
    """Decorate ``operation(arguments, caller, services) -> Reply`` into a Lambda handler:
    authenticate, parse and validate the arguments, call, render; every refusal in SyncTV's
    error shape. Authentication comes first, so a refused caller learns nothing more."""
    json_codec.built(model)

    def decorate(operation: Callable[[M, C, Services], Reply]) -> LambdaHandler:
        def respond(request: HttpRequest) -> HttpResponse:
            try:
                svc = services()
                caller = authenticate(svc.credentials, request)
                arguments = json_codec.validate(parameters(request), model)
                reply = operation(arguments, caller, svc)
            except PromoError as refused:
                answer = ERRORS.answer(refused)
                if answer.status >= 500:
                    logger.warning("Store unavailable", extra={"reason": refused.message})
                return error(answer, refused.message, _error_headers(refused))
            body = xml.render(reply.document)
            return HttpResponse(200, body, _XML, cookies=reply.cookies)

        return lambda_endpoint(respond, _unexpected)

    return decorate


__all__ = [
    "CreateRequest",
    "IndexRequest",
    "LoginRequest",
    "LogoutRequest",
    "Reply",
    "ShowRequest",
    "SyncTvCaller",
    "ValidateRequest",
    "Visitor",
    "admin",
    "endpoint",
    "session_or_device",
    "visitor",
]
