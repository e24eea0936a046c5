"""Fixtures shared by every test layer."""

import os
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config

from promo import bootstrap
from promo.settings import Settings
from tests.support.tables import Stores, create_table
from tools.dynamodb_local import DynamoDBLocal, free_port

# No test may reach real AWS: dummy credentials and a region for every client.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "PromoCodesTest",
        "POWERTOOLS_SERVICE_NAME": "promo-codes-test",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reaches DynamoDB Local, through any fixture, as integration:
    ``make unit`` runs the others, which need no Java."""
    for item in items:
        if "dynamodb_local" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def moto_stores() -> Iterator[Stores]:
    """Stores over a fresh moto table (single-threaded tests only: moto is not thread-safe)."""
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        # moto's backend is not thread-safe: bulk adds write from one thread here.
        yield Stores(client, create_table(client), BULK_WRITE_CONCURRENCY=1)


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """AWS DynamoDB Local, started once per test session on a free port."""
    server = DynamoDBLocal(port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def local_client(dynamodb_local: DynamoDBLocal):  # type: ignore[no-untyped-def]
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=dynamodb_local.endpoint,
        config=Config(max_pool_connections=128, retries={"mode": "standard"}),
    )


@pytest.fixture
def local_stores(local_client) -> Iterator[Stores]:  # type: ignore[no-untyped-def]
    """Stores over a fresh table in DynamoDB Local (real conditional writes, thread-safe)."""
    name = create_table(local_client)
    try:
        yield Stores(local_client, name)
    finally:
        local_client.delete_table(TableName=name)


@pytest.fixture
def streamed_stores(local_client) -> Iterator[Stores]:  # type: ignore[no-untyped-def]
    """Stores over a fresh DynamoDB Local table with its change stream on, as template.yaml
    defines it (``tests/support/stream.py`` reads it)."""
    name = create_table(local_client, stream=True)
    try:
        yield Stores(local_client, name)
    finally:
        local_client.delete_table(TableName=name)


@pytest.fixture(autouse=True)
def _cold_start() -> Iterator[None]:
    """Every test starts, and leaves, as a new function instance: no process services."""
    bootstrap.install(None)
    yield
    bootstrap.install(None)


@pytest.fixture
def deployed(
    local_stores: Stores, dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stores]:
    """Handlers configured as on AWS, against a fresh DynamoDB Local table."""
    settings = Settings(
        table_name=local_stores.table_name,
        dynamodb_endpoint_url=dynamodb_local.endpoint,
        # Credentials are read afresh on every call here, so revocations show at once in
        # tests; the cache's own bound is tested separately.
        config_cache_seconds=0,
    )
    bootstrap.install(bootstrap.bootstrap(settings))
    yield local_stores
    bootstrap.install(None)
