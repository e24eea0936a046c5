"""Request field types that apply the value policy and the wire-text check
(``promo.domain.values``) inside pydantic validation, so a refusal carries the field's location
in every protocol's own error shape and comes before anything is written.

``CodeValue`` is a promo-code value, canonical (NFC) once validated: every lookup and write uses
that form. ``WireText`` is any other free text that can be stored and so reach an answer: it is
refused when XML 1.0 could not carry it, and otherwise passed through untouched.
"""

from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from promo.domain.errors import InvalidRequest
from promo.domain.values import check_wire_text, normalize_value


def _code_value(raw: str) -> str:
    try:
        return normalize_value(raw)
    except InvalidRequest as refused:
        # The message goes in the context, not the template: it is never formatted again.
        raise PydanticCustomError(
            "promo_code_value", "{reason}", {"reason": refused.message}
        ) from None


def _wire_text(text: str) -> str:
    try:
        check_wire_text(text, "The text")
    except InvalidRequest as refused:
        raise PydanticCustomError("wire_text", "{reason}", {"reason": refused.message}) from None
    return text


# The check alone, for a type that also carries its own constraints (CRM.COM's ``Text``).
WIRE_TEXT = AfterValidator(_wire_text)

CodeValue = Annotated[str, AfterValidator(_code_value)]
WireText = Annotated[str, WIRE_TEXT]
