"""The table's change stream in tests: real records read from DynamoDB Local's stream, delivered
to the real consumer handler (functions/change_stream/app.py), as Lambda's event source mapping
would deliver them."""

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import boto3

from promo import bootstrap
from promo.event_bus import BusEvent
from promo.services import Services
from tests.support.tables import Stores
from tools.lambda_runtime import LambdaContext
from tools.local_stream import LambdaRecord, StreamTail, deliver, matches
from tools.router import stream_consumers

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def handler() -> Handler:
    """The consumer's handler, as Lambda imports it."""
    module = importlib.import_module("functions.change_stream.app")
    found: Handler = module.handler
    return found


def streams_client(stores: Stores) -> Any:
    return boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        endpoint_url=stores.client.meta.endpoint_url,
    )


class Stream:
    """A table's stream and its consumer: ``settle()`` delivers what was written since the last
    call, through the real handler, with the services of the consumer's function instance;
    events it publishes are kept in ``published``."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.tail = StreamTail.of_table(stores.client, streams_client(stores), stores.table_name)
        (consumer,) = stream_consumers()
        self.consumer = consumer
        self.published: list[BusEvent] = []
        self.services: Services = stores.fresh().services()._replace(publish=self.publish)

    def publish(self, events: Sequence[BusEvent]) -> None:
        self.published.extend(events)

    def read(self) -> list[LambdaRecord]:
        """New records, as the event source mapping's filter lets them through."""
        return [r for r in self.tail.read() if matches(self.consumer.patterns, r)]

    def invoke(self, records: Sequence[LambdaRecord]) -> dict[str, Any]:
        """One invocation of the consumer with ``records`` as its batch."""
        return self.handle({"Records": list(records)}, LambdaContext("ChangeStreamFunction"))

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The handler, run in this consumer's function instance."""
        bootstrap.install(self.services)
        try:
            return handler()(event, context)
        finally:
            bootstrap.install(None)

    def settle(self, batch_size: int | None = None) -> list[LambdaRecord]:
        """Deliver every new record in batches as the mapping does; the records delivered."""
        records = self.read()
        deliver(self.handle, records, batch_size or self.consumer.batch_size, 3)
        return records

    def kinds(self) -> list[str]:
        return [event.kind for event in self.published]

    def of_kind(self, kind: str) -> list[BusEvent]:
        return [event for event in self.published if event.kind == kind]
