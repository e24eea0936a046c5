from uuid import UUID, uuid4

import pytest

from promo.domain.ids import code_uuid, number_of


@pytest.mark.parametrize("number", [1, 42, 2**40 + 7, 2**62 - 1])
def test_a_code_uuid_carries_its_integer_id(number: int) -> None:
    made = code_uuid(number)

    assert made.version == 8
    assert number_of(made) == number
    assert number_of(UUID(str(made))) == number


def test_two_uuids_for_the_same_number_differ_so_ids_cannot_be_forged_from_numbers() -> None:
    assert code_uuid(7) != code_uuid(7)


def test_foreign_uuids_carry_no_number() -> None:
    assert number_of(uuid4()) is None
    assert number_of(UUID("00000000-0000-8000-8000-000000000000")) is None


@pytest.mark.parametrize("number", [0, -1, 2**62])
def test_numbers_outside_the_range_are_refused(number: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        code_uuid(number)
