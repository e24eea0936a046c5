"""The one policy for promo-code values and the boundary check for every other text on the wire.

A value must mean one code everywhere: in every codec, in query strings, in the store and on a
person's screen. So a value is refused, never silently repaired, when it could be read as a
different value somewhere else (``docs/values.md`` gives each rule with its reason):

- it is compared in Unicode NFC, so canonically equivalent spellings are one code;
- it has no whitespace at either end (refused, not stripped: one codec stripping and another not
  made an XML issue of ``" PAD "`` hit the code ``PAD``) and no run of spaces inside;
- it has 1 to ``MAX_VALUE_LENGTH`` characters (code points, after NFC);
- it holds no character XML 1.0 cannot carry, no control character and nothing invisible or
  blank-rendering (format characters, separators other than the plain space, fillers);
- it holds no compatibility look-alike (its NFKC form is its NFC form);
- it does not mix Latin with Cyrillic or Greek letters unless the tenant allows it.

Refusals are ``InvalidRequest`` with an English message that names the offending character by
code point and Unicode name, never by echoing the text: an error answer must itself render in
every format. Character classes follow the runtime's ``unicodedata`` (Unicode 15.1 on Python
3.13): a character assigned in a later Unicode version reads as unassigned and is refused.
"""

import re
import unicodedata
from functools import cache, lru_cache

from promo.domain.errors import InvalidRequest

# Also the bound in promo.domain.models; 128 code points are at most 512 UTF-8 bytes, well
# inside DynamoDB's key limits.
MAX_VALUE_LENGTH = 128

# What XML 1.0 cannot carry: the complement of its ``Char`` production, #x9 | #xA | #xD |
# [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]. A serializer raises on any of these.
_XML_ILLEGAL_CLASS = "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"


@cache
def _xml_illegal() -> re.Pattern[str]:
    """Compiled on first need, not on every cold start (docs/values.md, Cost): a text that
    ``str.isprintable`` accepts holds none of these characters, so most calls never need it."""
    return re.compile(_XML_ILLEGAL_CLASS)


# Characters that render as nothing or as blank space although their general category is not
# one the policy refuses as a whole (Cc, Cf, Cs, Co, Cn, Z*): the Default_Ignorable_Code_Point
# marks and letters, and the Braille blank.
_BLANK = frozenset(
    [
        "\u034f",  # COMBINING GRAPHEME JOINER
        "\u115f",  # HANGUL CHOSEONG FILLER
        "\u1160",  # HANGUL JUNGSEONG FILLER
        "\u17b4",  # KHMER VOWEL INHERENT AQ
        "\u17b5",  # KHMER VOWEL INHERENT AA
        "\u180b",  # MONGOLIAN FREE VARIATION SELECTOR ONE (to FOUR, U+180F)
        "\u180c",
        "\u180d",
        "\u180f",
        "\u2800",  # BRAILLE PATTERN BLANK
        "\u3164",  # HANGUL FILLER
        "\uffa0",  # HALFWIDTH HANGUL FILLER
        "\U00016fe4",  # KHITAN SMALL SCRIPT FILLER
        *map(chr, range(0xFE00, 0xFE10)),  # VARIATION SELECTOR-1 to -16
        *map(chr, range(0xE0100, 0xE01F0)),  # VARIATION SELECTOR-17 to -256
    ]
)

# Stand-ins for text that was lost: in a value they mean a decoding error upstream, and
# render_safe writes U+FFFD for what a format cannot carry.
_REPLACEMENT = frozenset("\ufffc\ufffd")

_XML_CANNOT = "is a character XML 1.0 cannot carry"

_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")

_REFUSED_CATEGORIES = {
    "Cc": "is a control character",
    "Cf": "is an invisible format character",
    "Cs": "is a lone surrogate",
    "Co": "is a private-use character",
    "Cn": "is a noncharacter or unassigned in Unicode " + unicodedata.unidata_version,
    "Zs": "is a space other than the plain space U+0020",
    "Zl": "is a line separator",
    "Zp": "is a paragraph separator",
}


def describe(char: str) -> str:
    """``U+00AD SOFT HYPHEN``: a character named in ASCII, safe in any error answer."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}" if name else f"U+{ord(char):04X}"


def normalize_value(raw: str, *, allow_mixed_scripts: bool = False, field: str = "value") -> str:
    """The canonical (NFC) form of a promo-code value, or ``InvalidRequest`` saying what is
    wrong; ``field`` becomes the error's location. Positions in messages count from 1 in the
    NFC form."""
    # Fast path, the common case: printable ASCII is its own NFC and NFKC form, all Latin.
    if raw.isascii() and raw.isprintable():
        _check_shape(raw, field)
        if "  " in raw:
            raise _space_run(raw, field)
        return raw
    value = unicodedata.normalize("NFC", raw)
    _check_shape(value, field)
    if unicodedata.category(value[0]).startswith("M"):
        raise InvalidRequest(
            f"A promo code value must not start with a combining mark: {describe(value[0])} "
            "would attach to whatever is written before it.",
            field,
        )
    first_of_script = _check_characters(value, field)
    if len(first_of_script) > 1 and not allow_mixed_scripts:
        (first, _), (second, position) = sorted(first_of_script.items(), key=lambda s: s[1])[:2]
        raise InvalidRequest(
            f"A promo code value must not mix {first.title()} and {second.title()} letters: "
            f"{describe(value[position - 1])} (position {position}) follows "
            f"{first.title()} letters, and such mixes make look-alikes of other codes.",
            field,
        )
    return value


def _check_shape(value: str, field: str) -> None:
    """Not empty, not too long, no whitespace at either end."""
    if not value:
        raise InvalidRequest("A promo code value must not be empty.", field)
    if len(value) > MAX_VALUE_LENGTH:
        raise _too_long(len(value), field)
    if value[0].isspace() or value[-1].isspace():
        raise _space_at_end(value, field)


def _check_characters(value: str, field: str) -> dict[str, int]:
    """Refuse the first character a value must not hold; the position at which each script's
    letters start."""
    first_of_script: dict[str, int] = {}
    after_space = False
    for position, char in enumerate(value, start=1):
        if char == " ":
            if after_space:
                raise _space_run(value, field)
            after_space = True
            continue
        after_space = False
        problem, script = _classify(char)
        if problem:
            raise InvalidRequest(
                f"A promo code value must not contain {describe(char)} (position {position}): "
                f"it {problem}.",
                field,
            )
        if script and script not in first_of_script:
            first_of_script[script] = position
    return first_of_script


def _too_long(length: int, field: str) -> InvalidRequest:
    return InvalidRequest(
        f"A promo code value has at most {MAX_VALUE_LENGTH} characters; this one has {length}.",
        field,
    )


def _space_at_end(value: str, field: str) -> InvalidRequest:
    end, char = ("start", value[0]) if value[0].isspace() else ("end", value[-1])
    return InvalidRequest(
        f"A promo code value must not {end} with whitespace ({describe(char)}): it is refused, "
        "not stripped, so that the value means the same code in every protocol.",
        field,
    )


def _space_run(value: str, field: str) -> InvalidRequest:
    position = value.index("  ") + 2
    return InvalidRequest(
        f"A promo code value must not contain two spaces in a row (position {position}): "
        "many displays show them as one.",
        field,
    )


def fold_value(value: str) -> str:
    """The key under which a tenant with case-insensitive codes compares values: NFC, then
    full Unicode case folding (so ``STRASSE`` and ``straße`` are one key), then NFC again."""
    if value.isascii():
        return value.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).casefold())


def xml_safe_text(text: str) -> bool:
    """Whether XML 1.0 can carry every character of ``text`` (and so every wire format)."""
    # Printable text has no control character, surrogate or noncharacter.
    return text.isprintable() or _xml_illegal().search(text) is None


def check_wire_text(text: str, field: str) -> None:
    """Refuse, before any write, a free text (point of contact, name, customer id) that some
    wire format could not render in an answer."""
    if text.isprintable():
        return
    found = _xml_illegal().search(text)
    if found is not None:
        raise InvalidRequest(
            f"{field} must not contain {describe(found.group())} (position {found.start() + 1}):"
            " XML 1.0 cannot carry it.",
            field,
        )


def render_safe(text: str) -> str:
    """``text`` with each character XML 1.0 cannot carry replaced by U+FFFD, so rendering a
    stored text never fails."""
    return text if text.isprintable() else _xml_illegal().sub("\ufffd", text)


def _classify_ascii(char: str) -> tuple[str | None, str | None]:
    if char.isprintable():
        return None, "LATIN" if char.isalpha() else None
    if char.isspace():
        return "is whitespace other than the plain space U+0020", None
    if char == "\x7f":
        return _REFUSED_CATEGORIES["Cc"], None
    return _XML_CANNOT, None


@lru_cache(maxsize=4096)
def _classify(char: str) -> tuple[str | None, str | None]:
    """(why ``char`` is refused in a value or None, the script of a letter or None)."""
    if char.isascii():
        return _classify_ascii(char)
    if _xml_illegal().match(char):
        return _XML_CANNOT, None
    category = unicodedata.category(char)
    if category in _REFUSED_CATEGORIES:
        return _REFUSED_CATEGORIES[category], None
    if char in _BLANK:
        return "renders as blank space or nothing", None
    if char in _REPLACEMENT:
        return "stands in for lost text", None
    compatible = unicodedata.normalize("NFKC", char)
    if compatible != char:
        shown = ", ".join(describe(c) for c in compatible)
        return f"is a compatibility look-alike; its NFKC form is {shown}", None
    if category.startswith("L"):
        script = unicodedata.name(char, "").partition(" ")[0]
        return None, script if script in _SCRIPTS else None
    return None, None
