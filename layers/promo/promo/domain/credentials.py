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


class MaestraOperation(NamedTuple):
    """How an endpoint's operation gets a code."""

    kind: StepKind
    pool_alias: str | None = None


class MaestraEndpoint(NamedTuple):
    """A Maestra endpoint: its tenant, its secret key's digest and its operations."""

    endpoint_id: str
    tenant_id: str
    secret_key_digest: str | None
    operations: Mapping[str, MaestraOperation] = MappingProxyType({})


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
