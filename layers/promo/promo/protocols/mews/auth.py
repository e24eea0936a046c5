"""Mews Connector authentication: ClientToken + AccessToken in the body, Client required.

An access token reaches one enterprise, or several if it is a portfolio token; each enterprise is
one of our tenants.
"""

from typing import Any, NamedTuple
from uuid import UUID

from promo.domain.errors import AuthenticationFailed, Forbidden, InvalidRequest
from promo.secret_hashing import matches, token_digest
from promo.store.credentials import CredentialStore


class MewsCaller(NamedTuple):
    """A request authenticated with a Mews access token and client token."""

    enterprises: dict[str, str]  # EnterpriseId -> tenant id
    portfolio: bool
    name: str
    # The AccessToken's digest: what its request limit is counted by (never the token itself).
    token_digest: str = ""

    @property
    def limit_key(self) -> tuple[str, str]:
        """(tenant, caller) its requests are counted under: per AccessToken, in the first of
        its enterprises' tenants (a portfolio token has one counter, not one per enterprise)."""
        return min(self.enterprises.values()), f"mews-token:{self.token_digest}"

    @property
    def actor(self) -> str:
        """How the audit trail names this credential (never the token itself)."""
        return f"mews:{self.name}"

    def scope(self, enterprise_ids: list[UUID] | None) -> list[str]:
        """Tenants a read may see: every enterprise of the token, or the requested ones.

        An enterprise outside the token's reach is refused as Mews refuses it: 403.
        """
        if enterprise_ids is None:
            return sorted(set(self.enterprises.values()))
        outside = [str(e) for e in enterprise_ids if str(e) not in self.enterprises]
        if outside:
            raise Forbidden("Enterprises outside the access token's scope: " + ", ".join(outside))
        return sorted({self.enterprises[str(e)] for e in enterprise_ids})

    def tenant_for_write(self, enterprise_id: UUID | None) -> str:
        """The tenant a write goes to: ``EnterpriseId`` is required with a portfolio token and
        optional otherwise; an enterprise outside the token's reach is refused (403), as
        getAll refuses it, rather than written to the token's own."""
        if enterprise_id is not None:
            return self.scope([enterprise_id])[0]
        if not self.portfolio:
            return next(iter(self.enterprises.values()))
        raise InvalidRequest(
            "EnterpriseId is required with a portfolio access token.", "EnterpriseId"
        )


def authenticate(credentials: CredentialStore, document: Any) -> MewsCaller:
    """The caller named by the body's tokens; AuthenticationFailed for anything else."""
    if not isinstance(document, dict):
        raise AuthenticationFailed
    client_token, access_token = document.get("ClientToken"), document.get("AccessToken")
    if not isinstance(client_token, str) or not isinstance(access_token, str):
        raise AuthenticationFailed
    if not client_token or not access_token or len(access_token) > 512:
        raise AuthenticationFailed
    digest = token_digest(access_token)
    token = credentials.mews_token(digest)
    if token is None or not matches(client_token, token.client_token_digest):
        raise AuthenticationFailed
    return MewsCaller(token.enterprises, token.portfolio, token.name, digest)
