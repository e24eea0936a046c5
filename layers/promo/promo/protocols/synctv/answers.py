"""SyncTV's answers: ``<ssap>`` documents with a ``<response>`` carrying SyncTV's ``code``, and
the session cookie alongside the handshake's."""

from datetime import datetime
from typing import NamedTuple

from lxml import etree

from promo.codecs import xml
from promo.domain import clock
from promo.domain.models import Code
from promo.domain.values import render_safe
from promo.http import HttpResponse
from promo.protocols.synctv.auth import Visitor, expired_cookie, session_cookie
from promo.protocols.synctv.errors import SyncTvError
from promo.services.listing import CodePage

VERSION = "0.5"
SUCCESS = 1
# validate: "the promo code is invalid or has been consumed" (the spec's only negative code).
INVALID_PROMO_CODE = -45
_XML = "application/xml; charset=utf-8"
_COMPLETED = "Successfully completed."


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
    """One ``<promo_code>``; ``consumed_on``/``consumed_by`` are empty until it is spent (a
    multi-use code: its last redemption), then they name the redemption that spent it."""
    node = xml.child(parent, "promo_code")
    xml.child(node, "id", code.number)
    xml.child(node, "created_at", _stamp(code.audit.created_at))
    xml.child(node, "code", render_safe(code.value))  # stored texts always render
    xml.child(node, "offer_id", offer_id)
    spent = code.is_spent
    xml.child(node, "consumed_on", _stamp(code.used_at) if spent else "")
    xml.child(node, "consumed_by", render_safe(code.used_by or "") if spent else "")
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


def ok(reply: Reply) -> HttpResponse:
    body = xml.render(reply.document)
    return HttpResponse(200, body, _XML, cookies=reply.cookies)


def error(answer: SyncTvError, message: str, headers: dict[str, str] | None = None) -> HttpResponse:
    root = etree.Element("ssap")
    _response(root, 0, answer.code, answer.message or message)
    xml.child(root, "version", VERSION)
    return HttpResponse(answer.status, xml.render(root), _XML, headers=headers or {})
