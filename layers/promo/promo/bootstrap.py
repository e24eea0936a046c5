"""The composition root: everything a function instance uses, built once per process.

``bootstrap(settings)`` builds the AWS session, the DynamoDB client, the stores, the validate
limit, the queue sender and the event publisher from a ``Settings`` value. Handlers reach the
result through ``services()``, which builds it on first use from the environment — the one
process-wide object of the layer, so a cold start is one ``install(None)`` away. Tests, the
local stack and ``promo-admin`` build their own from a ``Settings`` value and ``install`` it.
"""

import threading
from typing import TYPE_CHECKING

from promo import aws, observability
from promo.event_bus import EventBusPublisher, Publisher
from promo.queue import QueueSender, Sender
from promo.services import Services, ValidateLimit
from promo.settings import Settings
from promo.store import AttemptStore, CatalogStore, CodeStore, CredentialStore, Table
from promo.store.client import dynamodb

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_current: list[Services] = []
_lock = threading.Lock()


def bootstrap(
    settings: Settings,
    send: Sender | None = None,
    client: "DynamoDBClient | None" = None,
    publish: Publisher | None = None,
) -> Services:
    """The services over the table ``settings`` names. ``send`` replaces the SQS sender,
    ``client`` the DynamoDB client (a caller that watches the client's requests brings its own)
    and ``publish`` the EventBridge publisher (the local stack writes events to a file)."""
    observability.configure(settings)
    session = aws.get_session()
    table = Table(client or dynamodb(settings, session), settings.table_name)
    counters = AttemptStore(table)
    catalog = CatalogStore(table, settings)
    return Services(
        settings=settings,
        codes=CodeStore(table, settings, catalog),
        catalog=catalog,
        credentials=CredentialStore(table, settings),
        validate_limit=ValidateLimit.configured(settings, counters),
        send=send or QueueSender(settings, session),
        mews_limit=ValidateLimit.mews_requests(settings, counters),
        publish=publish or EventBusPublisher(settings, session),
    )


def services() -> Services:
    """This process's services: built from the environment on first use, then kept (module
    scope in a warm function), so a wrong environment fails the first request loudly."""
    if not _current:
        with _lock:
            if not _current:
                _current.append(bootstrap(Settings.from_environment()))
    return _current[0]


def install(built: Services | None) -> None:
    """Make ``built`` this process's services; None forgets them, as a new instance starts."""
    with _lock:
        _current.clear()
        if built is not None:
            _current.append(built)
