"""Operations shared by the protocols. A handler parses and validates its vendor's request, makes
exactly one call into this package, and renders what it returns in its vendor's format: the
answer's every fact comes back from the call, so renders never read the store.

- ``issuing``: Maestra operation steps and CRM.COM requests — every way a code is issued or used;
- ``catalog``: adding, generating and deleting codes, and finding pools and codes by alias or id;
- ``listing``: codes newest first, across tenants and pools, resumable;
- ``validation``: whether a code can be redeemed now, with the failed-answer limit;
- ``limits``: a credential's requests per window (Mews' per-AccessToken limit);
- ``inventory``: the table's change stream: per-pool counts, domain events, their repair.
"""

from collections.abc import Sequence
from typing import NamedTuple

from promo.domain.attempts import BlockedCallers, MissLimit
from promo.event_bus import BusEvent, EventsNotPublished, Publisher
from promo.queue import Sender
from promo.settings import Settings
from promo.store.attempts import AttemptStore
from promo.store.catalog import CatalogStore
from promo.store.codes import CodeStore
from promo.store.credentials import CredentialStore


def no_bus(events: Sequence[BusEvent]) -> None:
    """The publisher of services built without one: any event is refused."""
    if events:
        raise EventsNotPublished(0, "These services publish no events.")


class ValidateLimit(NamedTuple):
    """Validate's failed-answer limit: the policy, the shared counters, and the callers this
    function instance already knows to be over the limit."""

    limit: MissLimit
    counters: AttemptStore
    blocked: BlockedCallers

    @classmethod
    def configured(cls, settings: Settings, counters: AttemptStore) -> "ValidateLimit":
        policy = MissLimit(settings.validate_miss_limit, settings.validate_miss_window_seconds)
        return cls(policy, counters, BlockedCallers())

    @classmethod
    def mews_requests(cls, settings: Settings, counters: AttemptStore) -> "ValidateLimit":
        """Mews' limit on requests per AccessToken: the same fixed-window counters, counting
        every authenticated request rather than failed validations."""
        policy = MissLimit(settings.mews_request_limit, settings.mews_request_window_seconds)
        return cls(policy, counters, BlockedCallers())


class Services(NamedTuple):
    """What one operation works with, built once per process by ``promo.bootstrap``."""

    settings: Settings
    codes: CodeStore
    catalog: CatalogStore
    credentials: CredentialStore
    validate_limit: ValidateLimit
    # Puts an asynchronous operation on the worker's queue.
    send: Sender
    # Requests per Mews AccessToken and window (``limits.count_request``).
    mews_limit: ValidateLimit
    # Publishes domain events (the change stream consumer's); ``promo.event_bus``.
    publish: Publisher = no_bus
