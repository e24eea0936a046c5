"""Tables for tests, created from template.yaml's own definition so the schema cannot drift."""

import uuid
from typing import TYPE_CHECKING, Any

from promo.services import Services, ValidateLimit
from promo.settings import Settings
from promo.store.attempts import AttemptStore
from promo.store.catalog import CatalogStore
from promo.store.codes import CodeStore
from promo.store.credentials import CredentialStore
from promo.store.table import Table
from tools.template import create_table_request

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def create_table(client: "DynamoDBClient", name: str | None = None, stream: bool = False) -> str:
    """A table as template.yaml defines it; its change stream only with ``stream`` (DynamoDB
    Local writes every record to it too, which only the stream's own tests need to pay for)."""
    name = name or f"promo-test-{uuid.uuid4().hex[:12]}"
    request = create_table_request(name)
    if not stream:
        request.pop("StreamSpecification", None)
    client.create_table(**request)
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    return name


def _no_queue(message: dict[str, Any]) -> None:
    raise AssertionError(f"these services have no queue: {message}")


class Stores:
    """A code store and a catalog store over one table, as a function would hold them."""

    def __init__(self, client: "DynamoDBClient", table_name: str, **settings: object) -> None:
        # Keyword names are the environment variables of promo.settings.Settings.
        self.client = client
        self.table_name = table_name
        self.settings = Settings.model_validate({"TABLE_NAME": table_name, **settings})
        self.table = Table(client, table_name)
        self.catalog = CatalogStore(self.table, self.settings)
        self.codes = CodeStore(self.table, self.settings, self.catalog)

    def services(self) -> Services:
        """The services a function builds over this table (its own caches and blocked callers)."""
        credentials = CredentialStore(self.table, self.settings)
        counters = AttemptStore(self.table)
        limit = ValidateLimit.configured(self.settings, counters)
        mews_limit = ValidateLimit.mews_requests(self.settings, counters)
        return Services(
            self.settings, self.codes, self.catalog, credentials, limit, _no_queue, mews_limit
        )

    def fresh(self) -> "Stores":
        """Another function instance: same table, its own caches (as a second Lambda would)."""
        return Stores(self.client, self.table_name, **self.settings.model_dump(by_alias=True))
