"""The value policy (issue 15, items 1 and 7; docs/values.md): one canonical form per code, no
look-alikes, and nothing that an XML answer cannot carry."""

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from promo.domain.errors import InvalidRequest
from promo.domain.values import (
    MAX_VALUE_LENGTH,
    check_wire_text,
    fold_value,
    normalize_value,
    render_safe,
    xml_safe_text,
)


def xml_char(code_point: int) -> bool:
    """The XML 1.0 ``Char`` production, written as the specification writes it."""
    return (
        code_point in (0x9, 0xA, 0xD)
        or 0x20 <= code_point <= 0xD7FF
        or 0xE000 <= code_point <= 0xFFFD
        or 0x10000 <= code_point <= 0x10FFFF
    )


XML_ILLEGAL = [chr(c) for c in range(sys.maxunicode + 1) if not xml_char(c)]

# The look-alike table of docs/values.md: raw value -> canonical value.
ACCEPTED = {
    "plain ASCII": ("SPRING-7KQ3", "SPRING-7KQ3"),
    "precomposed é (NFC)": ("CAF\u00c9", "CAF\u00c9"),
    "E + combining acute (NFD)": ("CAFE\u0301", "CAF\u00c9"),
    "lower-case accented": ("café", "café"),
    # PROMO2024 in Cyrillic letters
    "all Cyrillic with digits": ("\u041f\u0420\u041e\u041c\u041e2024",) * 2,
    "all Greek": ("ΩΜΕΓΑ", "ΩΜΕΓΑ"),
    "Latin with CJK": ("SALE-春", "SALE-春"),
    "plain space inside": ("SPRING SALE", "SPRING SALE"),
    "KELVIN SIGN is canonically K": ("\u212aEY", "KEY"),
    "OHM SIGN is canonically Greek Omega": ("\u2126", "\u03a9"),
}

# raw value -> the offending character (or phrase) the refusal must name.
REFUSED = {
    "fullwidth letters": (
        "\uff33\uff30\uff32\uff29\uff2e\uff27",  # SPRING in fullwidth
        "U+FF33 FULLWIDTH LATIN CAPITAL LETTER S",
    ),
    "ligature fi": ("\ufb01ve", "U+FB01 LATIN SMALL LIGATURE FI"),
    "superscript two": ("SPRING\u00b2", "U+00B2 SUPERSCRIPT TWO"),
    "mathematical bold S": ("\U0001d412PRING", "U+1D412 MATHEMATICAL BOLD CAPITAL S"),
    "Hangul filler": ("SPRING\u3164", "U+3164 HANGUL FILLER"),
    "Hangul choseong filler": ("\u115fSPRING", "U+115F HANGUL CHOSEONG FILLER"),
    "Hangul jungseong filler": ("SPR\u1160ING", "U+1160 HANGUL JUNGSEONG FILLER"),
    "halfwidth Hangul filler": ("SPR\uffa0ING", "U+FFA0 HALFWIDTH HANGUL FILLER"),
    "Braille blank": ("SPRING\u2800", "U+2800 BRAILLE PATTERN BLANK"),
    "zero width space": ("SPR\u200bING", "U+200B ZERO WIDTH SPACE"),
    "zero width joiner": ("SPR\u200dING", "U+200D ZERO WIDTH JOINER"),
    "byte order mark": ("\ufeffSPRING", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
    "soft hyphen": ("SPR\u00adING", "U+00AD SOFT HYPHEN"),
    "right-to-left override": ("SPR\u202eING", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    "combining grapheme joiner": ("SPR\u034fING", "U+034F COMBINING GRAPHEME JOINER"),
    "variation selector": ("SPRING\ufe0f", "U+FE0F VARIATION SELECTOR-16"),
    "tag character": ("SPRING\U000e0041", "U+E0041 TAG LATIN CAPITAL LETTER A"),
    "private use": ("SPRING\ue000", "U+E000"),
    "unassigned": ("SPRING\u0378", "U+0378"),
    "replacement character": ("SPR\ufffdING", "U+FFFD REPLACEMENT CHARACTER"),
    "no-break space inside": ("SPRING\u00a0SALE", "U+00A0 NO-BREAK SPACE"),
    "ideographic space inside": ("SPRING\u3000SALE", "U+3000 IDEOGRAPHIC SPACE"),
    "line separator inside": ("SPRING\u2028SALE", "U+2028 LINE SEPARATOR"),
    "tab inside": ("SPRING\tSALE", "U+0009"),
    "DEL": ("SPRING\x7f", "U+007F"),
    "C1 control": ("SPR\x9bING", "U+009B"),
    "C0 control": ("SPR\x01ING", "U+0001"),
    "noncharacter U+FFFE": ("SPR\ufffeING", "U+FFFE"),
    "lone surrogate": ("SPR\ud800ING", "U+D800"),
    "Cyrillic A in a Latin value": ("SPRIN\u0410G", "U+0410 CYRILLIC CAPITAL LETTER A"),
    "Cyrillic o in a Latin value": ("pr\u043emo", "U+043E CYRILLIC SMALL LETTER O"),
    "Greek and Latin": ("Ωmega", "U+006D LATIN SMALL LETTER M"),
    "leading combining mark": ("\u0301SPRING", "U+0301 COMBINING ACUTE ACCENT"),
    "two spaces in a row": ("SPRING  SALE", "two spaces in a row"),
}


@pytest.mark.parametrize(("raw", "canonical"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_given_an_accepted_value_when_normalizing_then_its_canonical_form_is_returned(
    raw: str, canonical: str
) -> None:
    assert normalize_value(raw) == canonical


@pytest.mark.parametrize(("raw", "named"), REFUSED.values(), ids=REFUSED.keys())
def test_given_a_look_alike_or_invisible_value_when_normalizing_then_it_is_refused_naming_why(
    raw: str, named: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        normalize_value(raw, field="promoCode.value")

    assert named in refused.value.message
    assert refused.value.location == "promoCode.value"
    # The message names characters, never echoes the value, so the error itself always renders.
    assert refused.value.message.isascii()
    assert raw not in refused.value.message


def test_given_nfc_and_nfd_spellings_when_normalizing_then_both_are_one_value() -> None:
    nfc, nfd = unicodedata.normalize("NFC", "CAFÉ"), unicodedata.normalize("NFD", "CAFÉ")
    assert nfc != nfd

    assert normalize_value(nfc) == normalize_value(nfd) == nfc


def test_given_a_compatibility_look_alike_when_refused_then_the_message_gives_its_nfkc_form() -> (
    None
):
    with pytest.raises(InvalidRequest) as refused:
        normalize_value("\ufb01ve")

    assert (
        "NFKC form is U+0066 LATIN SMALL LETTER F, U+0069 LATIN SMALL LETTER I"
        in refused.value.message
    )


@pytest.mark.parametrize(
    "raw",
    [" PAD ", " PAD", "PAD ", "\tPAD", "PAD\n", "PAD\r", "\u00a0PAD", "PAD\u3000", "PAD\x85"],
)
def test_given_whitespace_at_either_end_when_normalizing_then_it_is_refused_not_stripped(
    raw: str,
) -> None:
    with pytest.raises(InvalidRequest, match="with whitespace") as refused:
        normalize_value(raw)

    assert "not stripped" in refused.value.message


def test_given_a_mixed_script_value_when_the_tenant_allows_mixing_then_it_is_accepted() -> None:
    assert normalize_value("Ωmega", allow_mixed_scripts=True) == "Ωmega"
    assert normalize_value("SPRIN\u0410G", allow_mixed_scripts=True) == "SPRIN\u0410G"


def test_given_mixing_allowed_when_the_value_holds_a_look_alike_then_it_is_still_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"U\+FF33"):
        normalize_value("\uff33PRING", allow_mixed_scripts=True)


def test_given_a_mixed_script_value_when_refused_then_the_message_names_both_scripts() -> None:
    with pytest.raises(InvalidRequest) as refused:
        normalize_value("SPRIN\u0410G")

    assert "mix Latin and Cyrillic letters" in refused.value.message
    assert "(position 6)" in refused.value.message


@pytest.mark.parametrize("char", ["X", "é", "Ж", "春"])
def test_given_a_value_of_the_maximum_length_when_normalizing_then_it_is_accepted_and_one_more_is_not(
    char: str,
) -> None:
    assert normalize_value(char * MAX_VALUE_LENGTH) == char * MAX_VALUE_LENGTH

    with pytest.raises(InvalidRequest, match=f"at most {MAX_VALUE_LENGTH} characters.*129"):
        normalize_value(char * (MAX_VALUE_LENGTH + 1))


def test_given_a_decomposed_value_when_measuring_then_its_nfc_length_counts() -> None:
    decomposed = "E\u0301" * MAX_VALUE_LENGTH  # 256 code points, 128 after NFC

    assert normalize_value(decomposed) == "\u00c9" * MAX_VALUE_LENGTH
    assert MAX_VALUE_LENGTH == 128


def test_given_an_empty_value_when_normalizing_then_it_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="must not be empty"):
        normalize_value("")


@pytest.mark.parametrize("char", ["\x01", "\x1f", "\ufffe", "\uffff", chr(0xD800), chr(0xDFFF)])
def test_given_an_xml_illegal_character_when_checked_then_both_the_value_policy_and_the_wire_check_refuse_it(
    char: str,
) -> None:
    text = f"Shop{char}12"

    with pytest.raises(InvalidRequest, match=f"U\\+{ord(char):04X}"):
        normalize_value(text)
    with pytest.raises(InvalidRequest, match=f"U\\+{ord(char):04X} \\(position 5\\)") as refused:
        check_wire_text(text, "pointOfContact")
    assert refused.value.location == "pointOfContact"
    assert refused.value.message.startswith("pointOfContact ")
    assert not xml_safe_text(text)


@pytest.mark.parametrize(
    "text", ["", "Shop 12, Riga", "line one\nline two\r\n\tindented", "Brīvības iela", "\x7f\x85"]
)
def test_given_text_xml_can_carry_when_checked_on_the_wire_then_it_passes(text: str) -> None:
    check_wire_text(text, "name")

    assert xml_safe_text(text)
    assert render_safe(text) == text


def test_given_every_code_point_when_tested_for_xml_then_the_answer_is_the_xml_char_production() -> (
    None
):
    wrong = [c for c in range(sys.maxunicode + 1) if xml_safe_text(chr(c)) != xml_char(c)]

    assert wrong == []
    assert len(XML_ILLEGAL) == 29 + 2048 + 2  # C0 but tab/LF/CR, surrogates, U+FFFE/U+FFFF


def test_given_every_xml_illegal_character_when_rendered_safely_then_lxml_serializes_it() -> None:
    for char in XML_ILLEGAL:
        text = f"a{char}b"
        root = etree.Element("answer")

        etree.SubElement(root, "pointOfContact").text = render_safe(text)

        assert etree.tostring(root, encoding="utf-8").decode() == (
            "<answer><pointOfContact>a\ufffdb</pointOfContact></answer>"
        )
        raw = etree.SubElement(root, "raw")
        with pytest.raises(ValueError, match=r"XML compatible|surrogates not allowed"):
            raw.text = text


def test_given_values_differing_in_case_when_folded_then_they_are_one_key() -> None:
    assert fold_value("spring-7KQ3") == fold_value("SPRING-7kq3") == "spring-7kq3"
    assert fold_value("CAFÉ") == fold_value("cafe\u0301") == "café"
    assert fold_value("ПРОМО") == fold_value("промо")
    assert fold_value("spring-7KQ3") != fold_value("spring-7KQ4")


def test_given_sharp_s_and_double_s_when_folded_then_full_case_folding_makes_them_equal() -> None:
    # str.casefold folds ß to ss, as Unicode's full case folding does: for a tenant with
    # case-insensitive codes, STRASSE and straße are one code.
    assert fold_value("STRASSE") == fold_value("straße") == "strasse"
    assert "STRASSE".lower() != "straße".lower()


# Any character at all, weighted towards the ones the policy is about.
TRICKY = st.sampled_from(
    [" ", "\t", "\u00a0", "\u0301", "\u3164", "\ufb01", "\u0410", "\u03a9", "\ud800", "\ufffe"]
)
ANY_CHAR = st.characters(exclude_categories=()) | st.characters(max_codepoint=0x7F) | TRICKY


@given(st.text(ANY_CHAR, max_size=MAX_VALUE_LENGTH + 2))
def test_given_any_text_when_normalizing_then_it_refuses_cleanly_or_returns_a_stable_safe_value(
    raw: str,
) -> None:
    refusal: InvalidRequest | None = None
    try:
        value = normalize_value(raw)
    except InvalidRequest as refused:
        refusal = refused
    if refusal is not None:
        assert refusal.message.isascii()
        return

    assert normalize_value(value) == value
    check_wire_text(value, "value")
    assert 1 <= len(value) <= MAX_VALUE_LENGTH
    assert unicodedata.is_normalized("NFC", value)
    assert unicodedata.is_normalized("NFKC", value)
    assert value == value.strip()
    assert fold_value(fold_value(value)) == fold_value(value)


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=140))
def test_given_printable_ascii_when_normalizing_then_only_length_and_spaces_decide(
    raw: str,
) -> None:
    acceptable = 1 <= len(raw) <= MAX_VALUE_LENGTH and raw == raw.strip() and "  " not in raw
    try:
        value = normalize_value(raw)
    except InvalidRequest:
        assert not acceptable
    else:
        assert acceptable
        assert value == raw


@given(st.text(st.characters(exclude_categories=()), max_size=20))
def test_given_any_text_when_rendered_safely_then_it_is_xml_safe_and_keeps_what_xml_carries(
    text: str,
) -> None:
    rendered = render_safe(text)

    assert xml_safe_text(rendered)
    assert len(rendered) == len(text)
    assert all(r == t or r == "\ufffd" for r, t in zip(rendered, text, strict=True))


# ---------------------------------------------------------------------- where the policy applies


def test_a_new_code_holds_its_value_in_nfc_and_refuses_what_the_policy_refuses() -> None:
    from promo.domain.models import NewCode

    assert NewCode("pool", "CAFE\u0301").value == "CAF\u00c9"
    for refused in (" PAD ", "SPRING\u3164", "\uff33PRING", "A\x01B", "X" * 129):
        with pytest.raises(InvalidRequest) as error:
            NewCode("pool", refused)
        assert error.value.location == "Value"


def test_the_xml_codec_renders_any_stored_text() -> None:
    from promo.codecs import xml

    root = etree.Element("r")
    xml.child(root, "value", "A\x01B\ufffeC")

    assert etree.fromstring(xml.render(root)).findtext("value") == "A\ufffdB\ufffdC"


def test_request_fields_refuse_with_their_location_and_keep_the_nfc_form() -> None:
    from promo.codecs import json as json_codec
    from promo.protocols.mews.requests import AddRequest

    model = json_codec.built(AddRequest)
    voucher = "fe568bbd-1ecb-4bb2-bf77-96c3698de20d"
    envelope = {"ClientToken": "c", "AccessToken": "a", "Client": "t"}

    def add(value: str) -> AddRequest:
        params = [{"VoucherId": voucher, "Value": value}]
        return json_codec.validate({**envelope, "VoucherCodeParameters": params}, model)

    assert add("CAFE\u0301").VoucherCodeParameters[0].Value == "CAF\u00c9"
    with pytest.raises(InvalidRequest) as refused:
        add(" PAD ")
    assert refused.value.location == "VoucherCodeParameters.0.Value"
    assert "not stripped" in refused.value.message
