"""The hardened XML parser refuses every classic XML attack before it can do harm."""

import time

import pytest

from promo.codecs import xml
from promo.domain.errors import MalformedRequest

ATTACKS = {
    "external entity (file)": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    "external entity (url)": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:1/x">]><r>&x;</r>',
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><r>&c;</r>',
    "external dtd": b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:1/evil.dtd"><r/>',
    "parameter entity": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><r/>',
    "utf-16 doctype": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'.encode(
        "utf-16"
    ),
    "deep nesting": b"<a>" * 10_000 + b"</a>" * 10_000,
    "one megabyte": b"<r>" + b"x" * (1024 * 1024) + b"</r>",
    "ten megabytes": b"<r>" + b"x" * (10 * 1024 * 1024) + b"</r>",
    "invalid utf-8": b'<?xml version="1.0" encoding="UTF-8"?><r>\xff\xfe</r>',
    "not xml": b'{"json": true}',
    "empty": b"",
    "unclosed": b"<operation><customer>",
}


@pytest.mark.parametrize("body", ATTACKS.values(), ids=ATTACKS.keys())
def test_hostile_documents_are_refused_quickly_as_malformed(body: bytes) -> None:
    started = time.perf_counter()

    with pytest.raises(MalformedRequest):
        xml.parse(body)

    assert time.perf_counter() - started < 1.0


def test_a_plain_document_parses_and_child_paths_read_text() -> None:
    root = xml.parse(
        b"<operation><customer><ids><webSiteUserId> 42 </webSiteUserId></ids></customer></operation>"
    )

    assert xml.child_text(root, "customer/ids/webSiteUserId") == "42"
    assert xml.child_text(root, "customer/ids/email") is None
    assert xml.child_text(root, "promoCode/ids/value") is None


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = xml.MAX_DEPTH
    root = xml.parse(b"<a>" * depth + b"</a>" * depth)

    assert root.tag == "a"


def test_rendering_writes_a_utf8_declaration_and_escapes_text() -> None:
    from lxml import etree

    root = etree.Element("result")
    xml.child(root, "status", "Success & <more>")

    assert (
        xml.render(root)
        == b"<?xml version='1.0' encoding='UTF-8'?>\n<result><status>Success &amp; &lt;more&gt;</status></result>"
    )
