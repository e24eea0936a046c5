"""What the fuzz tests found, kept as plain regression tests."""

from datetime import UTC, datetime

from promo.domain import clock
from tools.lambda_runtime import http_api_event


def test_a_json_body_that_is_not_utf8_reaches_the_handler_base64_encoded() -> None:
    # Found by schemathesis: the local stack dropped the connection with a traceback.
    event = http_api_event(
        "POST", "/x", "POST /x", b"\xf6m.\x81", {"content-type": "application/json"}
    )

    assert event["isBase64Encoded"] is True


def test_a_stored_time_before_the_year_1000_reads_back() -> None:
    moment = datetime(422, 10, 14, 0, 30, 49, 524830, tzinfo=UTC)

    assert clock.from_stored(clock.to_stored(moment)) == moment
