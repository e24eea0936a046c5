"""XML in and out, with an explicitly hardened lxml parser.

Requests are small; anything that looks like an attack is refused before or while parsing:
no DTDs, no entity expansion, no network or file access, bounded size and nesting depth.
"""

from io import BytesIO

from lxml import etree

from promo.domain.errors import MalformedRequest
from promo.domain.values import render_safe

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 32


def _parser_options() -> dict[str, bool]:
    return {
        "resolve_entities": False,  # never expand entities (billion laughs, XXE)
        "no_network": True,  # never fetch anything
        "load_dtd": False,  # never read an internal or external DTD
        "dtd_validation": False,
        "huge_tree": False,  # keep libxml2's own size and depth safety limits
        "remove_comments": True,
        "remove_pis": True,
        "collect_ids": False,
    }


def parse(body: bytes) -> etree._Element:
    """The document's root element, or MalformedRequest saying why it was refused."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedRequest(f"XML body larger than {MAX_BODY_BYTES} bytes.")
    if not body.strip():
        raise MalformedRequest("Empty XML body.")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MalformedRequest("XML document type declarations are not accepted.")
    depth = 0
    events = etree.iterparse(BytesIO(body), events=("start", "end"), **_parser_options())
    try:
        for event, _ in events:
            depth += 1 if event == "start" else -1
            if depth > MAX_DEPTH:
                raise MalformedRequest(f"XML nested deeper than {MAX_DEPTH} levels.")
        root: etree._Element = events.root
    except etree.XMLSyntaxError as exc:
        raise MalformedRequest(f"Malformed XML: {exc.msg}") from None
    # A document in another encoding could hide a declaration from the byte check above.
    if root.getroottree().docinfo.doctype:  # type: ignore[attr-defined]  # missing in lxml-stubs
        raise MalformedRequest("XML document type declarations are not accepted.")
    if any(isinstance(node, etree._Entity) for node in root.iter()):
        raise MalformedRequest("XML entity references are not accepted.")
    return root


def child_text(parent: etree._Element | None, path: str) -> str | None:
    """Stripped text at a slash-separated child path; None when absent or empty."""
    node = parent
    for step in path.split("/"):
        if node is None:
            return None
        node = node.find(step)
    if node is None or node.text is None:
        return None
    return node.text.strip() or None


def child(
    parent: etree._Element, tag: str, text: str | int | None = None, **attributes: str
) -> etree._Element:
    """A child element; its text passes through ``render_safe``, so an answer never fails on
    a stored text XML 1.0 cannot carry (each such character becomes U+FFFD)."""
    node = etree.SubElement(parent, tag, attributes)
    if text is not None:
        node.text = render_safe(str(text))
    return node


def render(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
