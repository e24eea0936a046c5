"""One local stack (DynamoDB Local included) for the whole fuzz folder."""

from collections.abc import Iterator

import pytest

from tests.fuzz.harness import Stack, start_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("fuzz-stack"))
