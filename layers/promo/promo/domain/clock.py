"""UTC time inside, each vendor's format at the edge.

Stored timestamps use one fixed-width ISO form (``2026-11-28T10:29:56.123456Z``) so that they sort
as strings in DynamoDB keys and conditions.
"""

import re
from datetime import UTC, datetime

from promo.domain.errors import InvalidRequest

_MAESTRA = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")
_ISO_8601 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})$"
)


def now() -> datetime:
    return datetime.now(UTC)


def _date_time(moment: datetime, separator: str) -> str:
    """``YYYY-MM-DD<sep>hh:mm:ss`` in UTC. Not strftime: its %Y does not pad years before 1000,
    which would neither sort nor read back."""
    u = moment.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}{separator}"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
    )


def to_stored(moment: datetime) -> str:
    return f"{_date_time(moment, 'T')}.{moment.astimezone(UTC).microsecond:06d}Z"


def from_stored(text: str) -> datetime:
    # fromisoformat reads the stored form (``Z`` included) in C; strptime costs ~10x more and
    # runs three times per code read.
    return datetime.fromisoformat(text)


def _build(groups: tuple[str | None, ...], location: str) -> datetime:
    year, month, day, hour, minute, second, fraction = (g or "0" for g in groups[:7])
    micro = int((fraction + "000000")[:6]) if groups[6] else 0
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC
        )
    except ValueError as exc:
        raise InvalidRequest(f"{location}: not a valid date and time.", location) from exc


def parse_maestra(text: str, location: str) -> datetime:
    """``YYYY-MM-DD hh:mm:ss.fff`` (Maestra), read as UTC; the ``T`` separator is tolerated."""
    match = _MAESTRA.match(text.strip())
    if match is None:
        raise InvalidRequest(f"{location}: expected YYYY-MM-DD hh:mm:ss.fff.", location)
    return _build(match.groups(), location)


def format_maestra(moment: datetime) -> str:
    return f"{_date_time(moment, ' ')}.{moment.astimezone(UTC).microsecond // 1000:03d}"


def parse_iso8601(text: str, location: str) -> datetime:
    """ISO 8601 with ``Z`` or an offset (Mews clients send ``+00:00`` as well as ``Z``)."""
    match = _ISO_8601.match(text.strip())
    if match is None:
        raise InvalidRequest(f"{location}: expected an ISO 8601 date and time in UTC.", location)
    local = _build(match.groups(), location).replace(tzinfo=None)
    zone = match.group(8)
    offset = UTC if zone == "Z" else datetime.strptime(zone, "%z").tzinfo
    return local.replace(tzinfo=offset).astimezone(UTC)


def format_iso8601(moment: datetime) -> str:
    """Seconds precision with ``Z``, as the Mews and SyncTV examples show."""
    return f"{_date_time(moment, 'T')}Z"


def format_crm(moment: datetime) -> str:
    """CRM.COM's ``YYYY-MM-DDThh:mm:ss`` (UTC, no zone designator)."""
    return _date_time(moment, "T")
