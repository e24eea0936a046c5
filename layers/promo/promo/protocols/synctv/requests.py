"""SyncTV REST v1 arguments: an offer's promo codes (index, show, create), promo_codes/validate
and the REST Session handshake (login, logout).

Contract and choices where it is silent: docs/protocols/synctv.md. Arguments come from the query
string, a form or XML body and the path, merged as Rails merges ``params``.
"""

import re
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promo.codecs import xml
from promo.codecs.fields import CodeValue, WireText
from promo.domain.errors import MalformedRequest
from promo.http import HttpRequest

MAX_PAGE_SIZE = 100  # an explicit ``limit``: SyncTV V2's pages
# Index without ``limit``: every code of the offer, as v1 (which shows no paging) promises, up
# to this many (~2 MB of XML, well inside a Lambda answer's 6 MB); docs/protocols/synctv.md.
UNPAGED_MAXIMUM = 10_000
MAX_FORM_BYTES = 64 * 1024


class _Model(BaseModel):
    # Rails ignores parameters an action does not use (format, utf8, a device on index...).
    # Built by the endpoint that validates with it (json_codec.built), not by every function.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class OfferRequest(_Model):
    offer_id: int = Field(ge=1, le=2**63 - 1)


class IndexRequest(OfferRequest):
    consumed: bool | None = None
    offset: int = Field(default=0, ge=0, le=2**31)
    limit: int | None = Field(default=None, ge=1, le=MAX_PAGE_SIZE)

    @property
    def page_size(self) -> int:
        """``limit``, else every code up to ``UNPAGED_MAXIMUM``."""
        return UNPAGED_MAXIMUM if self.limit is None else self.limit


class ShowRequest(OfferRequest):
    id: int = Field(ge=1, le=2**63 - 1)


class CreateRequest(OfferRequest):
    count: int = Field(default=1, ge=1, le=100)
    length: int = Field(default=6, ge=6, le=10)


class ValidateRequest(_Model):
    # The value policy (promo.domain.values): refused, never repaired; looked up as NFC.
    code: CodeValue
    device: WireText | None = None


class LoginRequest(_Model):
    email: WireText | None = Field(default=None, min_length=1, max_length=256)
    username: WireText | None = Field(default=None, min_length=1, max_length=256)
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
        # <session><email>…</email><password>…</password></session>: one level, as Rails reads
        # it. Text as sent, never stripped, as the query string and a form give it: a value
        # means one code whichever way it comes.
        root = xml.parse(request.body)
        parameters: dict[str, str] = {}
        for node in root:
            if isinstance(node.tag, str) and str(node.tag) not in parameters:
                leaf = not any(isinstance(child.tag, str) for child in node)
                parameters[str(node.tag)] = (node.text or "") if leaf else ""
        return parameters
    return {}  # other bodies carry nothing SyncTV reads
