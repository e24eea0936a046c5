import pytest
from pydantic import BaseModel, Field

from promo.codecs import json as json_codec
from promo.domain.errors import InvalidRequest, MalformedRequest


class Sample(BaseModel):
    Name: str = Field(min_length=1)
    Items: list[int] = Field(default_factory=list, max_length=1000)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"Name": "a", "Name": "b"}', "more than once"),
        (b'{"Name": ' + b"9" * 5000 + b"}", "number too large"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"Name": NaN}', "not a JSON number"),
        (b'{"Name": "a", "Ignored": 1e999999}', "too large"),
        (b'{"Name": "a"', "Malformed JSON"),
        (b"\xff\xfe", "Malformed JSON"),
    ],
)
def test_hostile_json_is_refused_as_malformed(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedRequest, match=reason):
        json_codec.parse(body, Sample)


def test_wrong_types_and_limits_are_invalid_requests_naming_the_field() -> None:
    with pytest.raises(InvalidRequest) as wrong_type:
        json_codec.parse(b'{"Name": 5}', Sample)
    with pytest.raises(InvalidRequest) as too_many:
        json_codec.parse(b'{"Name": "a", "Items": [' + b",".join([b"1"] * 1001) + b"]}", Sample)

    assert wrong_type.value.location == "Name"
    assert too_many.value.location == "Items"


def test_a_valid_body_becomes_the_model() -> None:
    assert json_codec.parse(b'{"Name": "a", "Items": [1, 2]}', Sample) == Sample(
        Name="a", Items=[1, 2]
    )
