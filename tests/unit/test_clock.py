from datetime import UTC, datetime

import pytest

from promo.domain import clock
from promo.domain.errors import InvalidRequest

MOMENT = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)


def test_stored_form_round_trips_and_sorts_as_text() -> None:
    earlier = datetime(2024, 2, 29, 23, 59, 58, 9, tzinfo=UTC)

    assert clock.from_stored(clock.to_stored(MOMENT)) == MOMENT
    assert clock.to_stored(earlier) < clock.to_stored(MOMENT)


def test_maestra_format_has_milliseconds_and_a_space() -> None:
    assert clock.format_maestra(MOMENT) == "2024-02-29 23:59:58.123"
    assert clock.parse_maestra("2024-02-29 23:59:58.123", "x") == MOMENT.replace(microsecond=123000)
    assert clock.parse_maestra("2024-02-29 23:59:58", "x") == MOMENT.replace(microsecond=0)


def test_iso8601_accepts_z_and_offsets_and_renders_z() -> None:
    assert clock.parse_iso8601("2023-10-09T22:00:00Z", "x") == datetime(2023, 10, 9, 22, tzinfo=UTC)
    assert clock.parse_iso8601("2023-10-09T22:00:00+00:00", "x") == datetime(
        2023, 10, 9, 22, tzinfo=UTC
    )
    assert clock.parse_iso8601("2023-10-10T00:00:00+02:00", "x") == datetime(
        2023, 10, 9, 22, tzinfo=UTC
    )
    assert clock.format_iso8601(MOMENT) == "2024-02-29T23:59:58Z"


def test_crm_format_has_no_zone_designator() -> None:
    assert clock.format_crm(MOMENT) == "2024-02-29T23:59:58"


@pytest.mark.parametrize(
    "text", ["2023-10-09", "2023-13-01T00:00:00Z", "yesterday", "2023-10-09T22:00:00"]
)
def test_invalid_iso8601_is_an_invalid_request_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        clock.parse_iso8601(text, "ValidityStartUtc")
    assert refused.value.location == "ValidityStartUtc"


@pytest.mark.parametrize("text", ["2024-02-30 00:00:00.000", "29.02.2024", ""])
def test_invalid_maestra_time_is_an_invalid_request(text: str) -> None:
    with pytest.raises(InvalidRequest):
        clock.parse_maestra(text, "executionDateTimeUtc")


def test_years_before_1000_are_padded_so_they_read_back_and_sort() -> None:
    early = datetime(422, 10, 14, 8, 30, tzinfo=UTC)

    assert clock.to_stored(early) == "0422-10-14T08:30:00.000000Z"
    assert clock.from_stored(clock.to_stored(early)) == early
    assert clock.to_stored(early) < clock.to_stored(MOMENT)
    assert clock.format_maestra(early) == "0422-10-14 08:30:00.000"
    assert clock.format_iso8601(early) == "0422-10-14T08:30:00Z"
    assert clock.format_crm(early) == "0422-10-14T08:30:00"
