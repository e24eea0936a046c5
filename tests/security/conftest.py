"""The security tests share one seeded table per module (tests/security/world.py)."""

from collections.abc import Iterator
from typing import Any

import pytest

import promo.bootstrap
from tests.security.world import World, build_world
from tests.support.tables import create_table


@pytest.fixture(scope="module")
def world(local_client: Any, dynamodb_local: Any) -> Iterator[World]:
    """Both tenants in a fresh DynamoDB Local table, shared by a module's tests. Every test
    checks that it changed nothing (or only what it means to), so they cannot disturb each
    other; seeding once keeps the folder fast (scrypt hashes, table creation)."""
    name = create_table(local_client)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TABLE_NAME", name)
        patch.setenv("DYNAMODB_ENDPOINT_URL", dynamodb_local.endpoint)
        # Credentials are read afresh on every call, so revocations show at once.
        patch.setenv("CONFIG_CACHE_SECONDS", "0")
        # A module sends hundreds of Mews requests with one AccessToken within seconds; Mews'
        # per-token limit (200 per 30 s) is tested in tests/protocol/test_mews.py.
        patch.setenv("MEWS_REQUEST_LIMIT", "0")
        # Services built afresh from this module's environment, and forgotten after it: none
        # may outlive the module into the next one's (its table is deleted below).
        promo.bootstrap.install(None)
        yield build_world(promo.bootstrap.services(), name)
        promo.bootstrap.install(None)
    local_client.delete_table(TableName=name)
