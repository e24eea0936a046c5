"""Hypothesis-generated requests for the XML routes: Maestra sync/async with application/xml
bodies and every SyncTV route. About half carry the demo credentials (Maestra's secret key, a
SyncTV admin or viewer session, the demo device) so that they reach validation and the domain."""

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from tests.fuzz import harness
from tests.fuzz.harness import Prepared, Stack

pytestmark = pytest.mark.integration

TEXT = st.text(max_size=40)
# Header and cookie values are what HTTP can carry (printable ASCII here, no leading blank: that
# is not part of a field value, and clients refuse to send it); anything else never leaves a
# client. Drawn from that alphabet directly: filtering arbitrary text for it rejected most draws
# (slow, and what passed was mostly the empty string).
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
    str.lstrip
)
ANY_INT = st.integers(-(2**70), 2**70)
NUMBERISH = st.one_of(ANY_INT.map(str), TEXT, st.sampled_from(["", "1e3", "0x10", " 5", "NaN"]))


def _leaf() -> st.SearchStrategy[str]:
    dates = st.sampled_from(["2026-01-01 00:00:00.000", "2099-12-31T23:59:59", "2026-13-45 99:99"])
    return st.one_of(TEXT, dates, st.sampled_from([*harness.DEMO_CODES, "spring-2025", "welcome"]))


# Maestra's <operation>: the documented element tree with random leaves, plus stray elements.
OPERATION_TREE = st.fixed_dictionaries(
    {},
    optional={
        "customer": st.fixed_dictionaries(
            {"ids": st.fixed_dictionaries({}, optional={"webSiteUserId": _leaf()})}
        ),
        "promoCode": st.fixed_dictionaries(
            {},
            optional={
                "ids": st.fixed_dictionaries({}, optional={"value": _leaf()}),
                "pool": st.fixed_dictionaries(
                    {"ids": st.fixed_dictionaries({}, optional={"externalId": _leaf()})}
                ),
                "availableFromDateTimeUtc": _leaf(),
                "availableTillDateTimeUtc": _leaf(),
            },
        ),
        "executionDateTimeUtc": _leaf(),
        "pointOfContact": _leaf(),
        "stray": st.recursive(_leaf(), lambda inner: st.dictionaries(st.just("x"), inner)),
    },
)


def _xml(tag: str, data: Any) -> etree._Element:
    element = etree.Element(tag)
    if isinstance(data, dict):
        for name, value in data.items():
            element.append(_xml(name, value))
    else:
        # XML 1.0 cannot carry every character; what it cannot is left out.
        element.text = "".join(c for c in str(data) if c.isprintable() and c != "\ufffe")
    return element


HOSTILE_BODIES = st.one_of(
    st.binary(max_size=200),
    TEXT.map(str.encode),
    st.sampled_from(
        [
            b"",
            b"<operation>",
            b"<result/>",
            b'<?xml version="1.0"?><!DOCTYPE operation [<!ENTITY x "y">]><operation>&x;</operation>',
            b'<operation xmlns="urn:other"><customer/></operation>',
            b"<operation>" + b"<a>" * 40 + b"</a>" * 40 + b"</operation>",
            b"\xef\xbb\xbf<operation/>",
            '<?xml version="1.0" encoding="latin-1"?><operation>\xe9</operation>'.encode("latin-1"),
        ]
    ),
)

MAESTRA_BODIES = st.one_of(
    OPERATION_TREE.map(lambda tree: etree.tostring(_xml("operation", tree))),
    OPERATION_TREE.map(lambda tree: etree.tostring(_xml("operation", tree), xml_declaration=True)),
    HOSTILE_BODIES,
)
ACCEPT = st.sampled_from([None, "application/xml", "text/xml", "application/json", "*/*", "x/y"])


@st.composite
def maestra_requests(draw: st.DrawFn, path: str, stack: Stack) -> tuple[Prepared, bool]:
    credentials = draw(st.booleans())
    params: dict[str, str] = {}
    headers = {
        "Content-Type": draw(st.sampled_from(["application/xml", "text/xml; charset=utf-8"]))
    }
    if credentials:
        params["endpointId"] = harness.MAESTRA_ENDPOINT
        params["operation"] = draw(st.sampled_from(harness.MAESTRA_OPERATIONS))
        headers["Authorization"] = draw(
            st.sampled_from(
                [f"SecretKey {harness.MAESTRA_KEY}", f'Mindbox secretKey="{harness.MAESTRA_KEY}"']
            )
        )
    else:
        for name in ("endpointId", "endpoint", "operation"):
            if draw(st.booleans()):
                params[name] = draw(st.one_of(TEXT, st.just(harness.MAESTRA_ENDPOINT)))
        if draw(st.booleans()):
            headers["Authorization"] = draw(st.one_of(HEADER_TEXT, st.just("SecretKey wrong")))
    for name in ("transactionId", "deviceUUID"):
        if draw(st.booleans()):
            params[name] = draw(TEXT)
    accept = draw(ACCEPT)
    if accept is not None:
        headers["Accept"] = accept
    headers = {k: v for k, v in headers.items() if "\n" not in v and "\r" not in v}
    kwargs = {"params": params, "headers": headers, "data": draw(MAESTRA_BODIES)}
    wants_json = accept is not None and "json" in accept
    wants_xml = accept is not None and "xml" in accept
    return Prepared("POST", stack.url + path, kwargs), wants_xml or not wants_json


def synctv_cookie(draw: st.DrawFn, stack: Stack, admin_only: bool = False) -> dict[str, str]:
    choice = draw(st.sampled_from(["admin", "viewer", "none", "random"]))
    if choice == "admin" or (admin_only and choice == "viewer"):
        return {"_synctv_session": stack.synctv_admin}
    if choice == "viewer":
        return {"_synctv_session": stack.synctv_viewer}
    if choice == "random":
        return {"_synctv_session": draw(HEADER_TEXT)}
    return {}


def segment(draw: st.DrawFn, valid: list[int]) -> str:
    value = draw(st.one_of(st.sampled_from(valid).map(str), NUMBERISH))
    # An empty or dot segment is another path (API Gateway answers 404), not this route.
    if value in ("", ".", ".."):
        value = "0"
    return quote(value, safe="")


def maybe(draw: st.DrawFn, params: dict[str, str], name: str, values: Any) -> None:
    if draw(st.booleans()):
        params[name] = draw(values)


@st.composite
def synctv_requests(draw: st.DrawFn, operation: str, stack: Stack) -> Prepared:
    base = stack.url + "/rest/v1"
    params: dict[str, str] = {}
    cookies: dict[str, str] = {}
    kwargs: dict[str, Any] = {"params": params}
    if operation == "login":
        login = draw(
            st.sampled_from([harness.SYNCTV_ADMIN, harness.SYNCTV_VIEWER, None, None])
        ) or {"email": draw(TEXT), "password": draw(TEXT)}
        style = draw(st.sampled_from(["form", "xml", "query", "hostile", "nested"]))
        if style == "form":
            kwargs["data"] = login
        elif style == "nested":
            kwargs["data"] = {f"session[{k}]": v for k, v in login.items()}
        elif style == "xml":
            kwargs["data"] = etree.tostring(_xml("session", login))
            kwargs["headers"] = {"Content-Type": "application/xml"}
        elif style == "query":
            params.update(login)
        else:
            kwargs["data"] = draw(HOSTILE_BODIES)
            kwargs["headers"] = {
                "Content-Type": draw(
                    st.sampled_from(
                        ["application/xml", "text/xml", "application/x-www-form-urlencoded"]
                    )
                )
            }
        method, url = "POST", f"{base}/session"
    elif operation == "logout":
        cookies = draw(
            st.sampled_from(
                [{"_synctv_session": stack.synctv_to_end}, {}, {"_synctv_session": "x" * 43}]
            )
        )
        method, url = "DELETE", f"{base}/session"
    elif operation in ("index", "create"):
        cookies = synctv_cookie(draw, stack)
        offer = segment(draw, harness.SYNCTV_OFFERS)
        method, url = (
            ("GET" if operation == "index" else "POST"),
            f"{base}/offers/{offer}/promo_codes",
        )
        if operation == "index":
            maybe(draw, params, "consumed", st.one_of(TEXT, st.sampled_from(["true", "F", "yes"])))
            maybe(draw, params, "offset", NUMBERISH)
            maybe(draw, params, "limit", NUMBERISH)
        else:
            # Mostly small counts: each created code is a write.
            maybe(draw, params, "count", st.one_of(st.integers(1, 3).map(str), NUMBERISH))
            maybe(draw, params, "length", st.one_of(st.integers(6, 10).map(str), NUMBERISH))
    elif operation == "show":
        cookies = synctv_cookie(draw, stack)
        offer = segment(draw, harness.SYNCTV_OFFERS)
        code_id = segment(draw, [1, 2, 3, 10])
        method, url = "GET", f"{base}/offers/{offer}/promo_codes/{code_id}"
    else:
        cookies = synctv_cookie(draw, stack)
        maybe(draw, params, "code", st.one_of(TEXT, st.sampled_from(harness.DEMO_CODES)))
        maybe(draw, params, "device", st.one_of(TEXT, st.just(harness.SYNCTV_DEVICE)))
        method, url = "GET", f"{base}/promo_codes/validate"
    if draw(st.booleans()):
        params["format"] = draw(TEXT)  # ignored, as Rails would
    if cookies:
        kwargs["cookies"] = cookies
    return Prepared(method, url, kwargs)


@pytest.mark.parametrize("path", ["/v3/operations/sync", "/v3/operations/async"])
def test_maestra_xml_route_survives_fuzzing(path: str, stack: Stack) -> None:
    # The answer must come in the format asked for: XML unless the client asked for JSON only.
    checks = {True: harness.maestra_check(True), False: harness.maestra_check(False)}
    sender = harness.Sender(f"maestra xml {path}", checks[True])

    @harness.fuzzed
    @given(maestra_requests(path, stack))
    def generate(request: tuple[Prepared, bool]) -> None:
        prepared, as_xml = request
        sender.submit(prepared, checks[as_xml])

    generate()

    harness.assert_clean(sender)


@pytest.mark.parametrize("operation", ["login", "logout", "index", "show", "create", "validate"])
def test_synctv_route_survives_fuzzing(operation: str, stack: Stack) -> None:
    sender = harness.Sender(f"synctv {operation}", harness.synctv_check(operation))

    @harness.fuzzed
    @given(synctv_requests(operation, stack))
    def generate(request: Prepared) -> None:
        sender.submit(request)

    generate()

    harness.assert_clean(sender)
