from collections.abc import Collection

import pytest

from promo.domain.codegen import DEFAULT_ALPHABET, CodeGenerator
from promo.domain.errors import CodeSpaceExhausted, InvalidRequest


def nothing_taken(_: Collection[str]) -> set[str]:
    return set()


def test_default_alphabet_has_no_look_alike_characters() -> None:
    assert not set("0Oo1IiLl") & set(DEFAULT_ALPHABET)
    assert len(set(DEFAULT_ALPHABET)) == len(DEFAULT_ALPHABET) >= 50


def test_given_a_count_when_generating_then_that_many_distinct_codes_of_the_length() -> None:
    codes = CodeGenerator(length=8).generate(500, existing_count=0, taken=nothing_taken)

    assert len(codes) == len(set(codes)) == 500
    assert all(len(code) == 8 and set(code) <= set(DEFAULT_ALPHABET) for code in codes)


def test_given_values_already_taken_when_generating_then_none_of_them_is_returned() -> None:
    alphabet = "AB"  # 16 codes of length 4: collisions are certain
    taken = {"AAAA", "ABAB", "BBBB", "BAAB"}
    generator = CodeGenerator(length=4, alphabet=alphabet)

    codes = generator.generate(4, existing_count=len(taken), taken=lambda batch: set(batch) & taken)

    assert len(set(codes)) == 4
    assert not set(codes) & taken


def test_given_a_space_too_small_for_the_count_when_generating_then_it_refuses() -> None:
    generator = CodeGenerator(length=2, alphabet="AB")  # 4 possible values

    with pytest.raises(CodeSpaceExhausted, match="cannot be drawn"):
        generator.generate(3, existing_count=0, taken=nothing_taken)


def test_given_a_space_mostly_used_when_generating_then_it_refuses_before_drawing() -> None:
    generator = CodeGenerator(length=6)
    calls: list[Collection[str]] = []

    def taken(batch: Collection[str]) -> set[str]:
        calls.append(batch)
        return set()

    with pytest.raises(CodeSpaceExhausted):
        generator.generate(10, existing_count=generator.space // 2, taken=taken)
    assert calls == []


@pytest.mark.parametrize(("length", "alphabet"), [(0, DEFAULT_ALPHABET), (6, "A"), (6, "AAB")])
def test_given_a_degenerate_configuration_when_building_then_it_is_refused(
    length: int, alphabet: str
) -> None:
    with pytest.raises(InvalidRequest):
        CodeGenerator(length=length, alphabet=alphabet)
