"""Credentials and sessions. Only digests of secrets are stored; lookups are by digest.

Item kinds (``pk`` / ``sk``):
- ``CRED#mews#<sha256(AccessToken)>`` / ``CRED``: a Mews access token, its client token digest
  and the enterprises it reaches, each mapped to its tenant.
"""

from dataclasses import dataclass

from promo.cache import TtlCache
from promo.settings import Settings
from promo.store.items import Item, s
from promo.store.table import Table


@dataclass(frozen=True, slots=True)
class MewsAccessToken:
    token_digest: str
    client_token_digest: str
    # Mews EnterpriseId (a UUID, as text) -> our tenant id. One entry unless a portfolio token.
    enterprises: dict[str, str]
    portfolio: bool
    name: str


def _mews_key(token_digest: str) -> Item:
    return {"pk": s(f"CRED#mews#{token_digest}"), "sk": s("CRED")}


class CredentialStore:
    def __init__(self, table: Table, settings: Settings) -> None:
        self._table = table
        # Bounds how late a revocation reaches a warm function (docs/security.md).
        self._mews: TtlCache[str, MewsAccessToken | None] = TtlCache(settings.config_cache_seconds)

    def put_mews_token(self, token: MewsAccessToken) -> None:
        self._table.put(
            Item={
                **_mews_key(token.token_digest),
                "client_token_digest": s(token.client_token_digest),
                "enterprises": {"M": {e: s(t) for e, t in token.enterprises.items()}},
                "portfolio": {"BOOL": token.portfolio},
                "name": s(token.name),
            }
        )
        self._mews.forget(token.token_digest)

    def revoke_mews_token(self, token_digest: str) -> None:
        self._table.delete(Key=_mews_key(token_digest))
        self._mews.forget(token_digest)

    def mews_token(self, token_digest: str) -> MewsAccessToken | None:
        def load() -> MewsAccessToken | None:
            item = self._table.get(_mews_key(token_digest))
            if item is None:
                return None
            return MewsAccessToken(
                token_digest=token_digest,
                client_token_digest=item["client_token_digest"]["S"],
                enterprises={e: t["S"] for e, t in item["enterprises"]["M"].items()},
                portfolio=item["portfolio"]["BOOL"],
                name=item["name"]["S"],
            )

        return self._mews.get_or_load(token_digest, load)
