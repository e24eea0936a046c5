"""Credential records as the domain knows them: only digests and hashes of secrets, never a
secret in clear (``promo.secret_hashing`` makes them; the store keeps them)."""

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

from promo.domain.models import StepKind


class MewsAccessToken(NamedTuple):
    """A Mews credential as stored: digests of both tokens, never the tokens."""

    token_digest: str
    client_token_digest: str
    # Mews EnterpriseId (a UUID, as text) -> our tenant id. One entry unless a portfolio token.
    enterprises: dict[str, str]
    portfolio: bool
    name: str


# How long a reservation holds a use unless its operation's configuration says otherwise.
DEFAULT_HOLD_MINUTES = 15


class MaestraOperation(NamedTuple):
    """How an endpoint's operation gets a code; a reservation's, how long it holds a use."""

    kind: StepKind
    pool_alias: str | None = None
    hold_minutes: int = DEFAULT_HOLD_MINUTES


# How far back an endpoint's requests may date themselves (``executionDateTimeUtc``) unless its
# configuration says otherwise.
DEFAULT_LOOK_BACK_DAYS = 7


class MaestraEndpoint(NamedTuple):
    """A Maestra endpoint: its tenant, its secret key's digest, its operations, and how many
    days back a request may date its effective time."""

    endpoint_id: str
    tenant_id: str
    secret_key_digest: str | None
    operations: Mapping[str, MaestraOperation] = MappingProxyType({})
    look_back_days: int = DEFAULT_LOOK_BACK_DAYS


class User(NamedTuple):
    """A CRM.COM or SyncTV user. ``profile`` holds what the protocol echoes (names, unit)."""

    tenant_id: str
    username: str
    password_hash: str
    admin: bool = False
    profile: Mapping[str, str] = MappingProxyType({})


class Session(NamedTuple):
    """A live CRM.COM token or SyncTV session cookie, and whose it is."""

    kind: str  # "crm" or "synctv"
    tenant_id: str
    username: str
    admin: bool
    expires_at: datetime
