"""Code identifiers: one integer id per code, and a UUID that carries it.

The UUID is an RFC 9562 version-8 (custom) UUID whose low 62 bits are the integer id and whose
other bits are random. One store item keyed by the integer therefore resolves both kinds of id,
and a UUID made up by a client still has to match the stored one exactly.
"""

import secrets
from uuid import UUID

_ID_BITS = 62
_ID_MASK = (1 << _ID_BITS) - 1
_VERSION_8 = 0x8 << 76
_VARIANT_RFC = 0b10 << 62


def code_uuid(number: int) -> UUID:
    if not 0 < number <= _ID_MASK:
        raise ValueError("code number out of range")
    high = secrets.randbits(48) << 80 | secrets.randbits(12) << 64
    return UUID(int=high | _VERSION_8 | _VARIANT_RFC | number)


def number_of(code_id: UUID) -> int | None:
    """The integer id inside a code UUID, or None if the UUID is not one of ours."""
    if code_id.version != 8 or (code_id.int >> 62) & 0b11 != 0b10:
        return None
    return code_id.int & _ID_MASK or None
