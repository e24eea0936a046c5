"""Credentials. Only digests of secrets are stored: SHA-256 for generated tokens and keys (so a
request's token finds its record with one read), salted scrypt for passwords people choose.

Item kinds (``pk``; ``sk`` is always ``CRED``):
- ``CRED#mews#<sha256(AccessToken)>``: client token digest, enterprises reached (-> tenants).
- ``CRED#maestra#<endpoint>``: tenant, secret key digest (if the endpoint requires one),
  operation settings, look-back in days.
- ``CRED#crm#<tenant>#<username>``: CRM.COM user (password hash, person name, e-mail, unit).
- ``CRED#synctv-user#<username>``: SyncTV user of one tenant (password hash, admin flag).
- ``CRED#synctv-device#<device>``: SyncTV device registered for one tenant.
- ``CRED#session-<kind>#<sha256(token)>``: a login session (CRM.COM token, SyncTV cookie),
  expiring at ``expires_at`` (also the table's TTL attribute, so DynamoDB removes it later).
  Sessions are never cached: logging out takes effect at once everywhere.

Endpoint, username and device names are global keys: a write that would move one to another
tenant is refused.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from promo.cache import TtlCache
from promo.domain.credentials import (
    DEFAULT_HOLD_MINUTES,
    DEFAULT_LOOK_BACK_DAYS,
    MaestraEndpoint,
    MaestraOperation,
    MewsAccessToken,
    Session,
    User,
)
from promo.domain.errors import InvalidRequest
from promo.domain.models import StepKind
from promo.secret_hashing import token_digest
from promo.settings import Settings
from promo.store.items import Item, n, s
from promo.store.table import ConditionFailed, Table


def _key(kind: str, name: str) -> Item:
    return {"pk": s(f"CRED#{kind}#{name}"), "sk": s("CRED")}


class CredentialStore:
    def __init__(self, table: Table, settings: Settings) -> None:
        self._table = table
        # Bounds how late a revocation reaches a warm function (docs/security.md).
        self._cache: TtlCache[tuple[str, str], Any] = TtlCache(settings.config_cache_seconds)

    # ------------------------------------------------------------------ generic

    def _put(self, kind: str, name: str, tenant_id: str, attributes: Item) -> None:
        """Write a credential, refusing to move a global name to another tenant."""
        try:
            self._table.put(
                Item={**_key(kind, name), "tenant": s(tenant_id), **attributes},
                ConditionExpression="attribute_not_exists(pk) OR tenant = :tenant",
                ExpressionAttributeValues={":tenant": s(tenant_id)},
            )
        except ConditionFailed:
            raise InvalidRequest(f"{kind} {name!r} belongs to another tenant.", kind) from None
        self._cache.forget((kind, name))

    def _get[T](self, kind: str, name: str, build: Callable[[Item], T]) -> T | None:
        def load() -> T | None:
            item = self._table.get(_key(kind, name))
            return None if item is None else build(item)

        result: T | None = self._cache.get_or_load((kind, name), load)
        return result

    def revoke(self, kind: str, name: str) -> None:
        self._table.delete(Key=_key(kind, name))
        self._cache.forget((kind, name))

    # ------------------------------------------------------------------ Mews

    def put_mews_token(self, token: MewsAccessToken) -> None:
        self._table.put(
            Item={
                **_key("mews", token.token_digest),
                "client_token_digest": s(token.client_token_digest),
                "enterprises": {"M": {e: s(t) for e, t in token.enterprises.items()}},
                "portfolio": {"BOOL": token.portfolio},
                "name": s(token.name),
            }
        )
        self._cache.forget(("mews", token.token_digest))

    def revoke_mews_token(self, token_digest: str) -> None:
        self.revoke("mews", token_digest)

    def mews_token(self, token_digest: str) -> MewsAccessToken | None:
        return self._get(
            "mews",
            token_digest,
            lambda item: MewsAccessToken(
                token_digest=token_digest,
                client_token_digest=item["client_token_digest"]["S"],
                enterprises={e: t["S"] for e, t in item["enterprises"]["M"].items()},
                portfolio=item["portfolio"]["BOOL"],
                name=item["name"]["S"],
            ),
        )

    def mews_tokens_named(self, name: str) -> list[MewsAccessToken]:
        """Tokens with this name (for rotation); a scan, so for operators only."""
        found = []
        for item in self._table.paginate(
            self._table.scan,
            FilterExpression="begins_with(pk, :kind) AND #name = :name",
            ExpressionAttributeNames={"#name": "name"},
            ExpressionAttributeValues={":kind": s("CRED#mews#"), ":name": s(name)},
        ):
            digest = item["pk"]["S"].rsplit("#", 1)[1]
            token = self.mews_token(digest)
            if token is not None:
                found.append(token)
        return found

    # ------------------------------------------------------------------ Maestra

    def put_maestra_endpoint(self, endpoint: MaestraEndpoint) -> None:
        operations = {
            name: {
                "M": {
                    "kind": s(op.kind),
                    **({"pool": s(op.pool_alias)} if op.pool_alias else {}),
                    **({"hold_minutes": n(op.hold_minutes)} if op.kind is StepKind.RESERVE else {}),
                }
            }
            for name, op in endpoint.operations.items()
        }
        attributes: Item = {
            "operations": {"M": operations},
            "look_back_days": n(endpoint.look_back_days),
        }
        if endpoint.secret_key_digest is not None:
            attributes["secret_key_digest"] = s(endpoint.secret_key_digest)
        self._put("maestra", endpoint.endpoint_id, endpoint.tenant_id, attributes)

    def maestra_endpoint(self, endpoint_id: str) -> MaestraEndpoint | None:
        def build(item: Item) -> MaestraEndpoint:
            operations = {
                name: MaestraOperation(
                    StepKind(op["M"]["kind"]["S"]),
                    op["M"].get("pool", {}).get("S"),
                    int(op["M"].get("hold_minutes", {"N": DEFAULT_HOLD_MINUTES})["N"]),
                )
                for name, op in item["operations"]["M"].items()
            }
            digest = item.get("secret_key_digest")
            look_back = item.get("look_back_days")  # absent on endpoints written before it
            return MaestraEndpoint(
                endpoint_id,
                item["tenant"]["S"],
                digest["S"] if digest else None,
                operations,
                int(look_back["N"]) if look_back else DEFAULT_LOOK_BACK_DAYS,
            )

        return self._get("maestra", endpoint_id, build)

    # ------------------------------------------------------------------ users and devices

    def put_user(self, kind: str, user: User) -> None:
        """``kind`` is ``crm`` (names scoped by tenant) or ``synctv-user`` (global names)."""
        self._put(
            kind,
            self._user_name(kind, user.tenant_id, user.username),
            user.tenant_id,
            {
                "username": s(user.username),
                "password_hash": s(user.password_hash),
                "admin": {"BOOL": user.admin},
                "profile": {"M": {k: s(v) for k, v in user.profile.items()}},
            },
        )

    def user(self, kind: str, tenant_id: str | None, username: str) -> User | None:
        def build(item: Item) -> User:
            return User(
                tenant_id=item["tenant"]["S"],
                username=item["username"]["S"],
                password_hash=item["password_hash"]["S"],
                admin=item["admin"]["BOOL"],
                profile={k: v["S"] for k, v in item["profile"]["M"].items()},
            )

        return self._get(kind, self._user_name(kind, tenant_id, username), build)

    @staticmethod
    def _user_name(kind: str, tenant_id: str | None, username: str) -> str:
        return f"{tenant_id}#{username}" if kind == "crm" else username

    # ------------------------------------------------------------------ sessions

    def start_session(self, token: str, session: Session) -> None:
        self._table.put(
            Item={
                **_key(f"session-{session.kind}", token_digest(token)),
                "tenant": s(session.tenant_id),
                "username": s(session.username),
                "admin": {"BOOL": session.admin},
                "expires_at": n(int(session.expires_at.timestamp())),
            }
        )

    def session(self, kind: str, token: str) -> Session | None:
        """The live session behind ``token``; None if unknown, ended or expired (DynamoDB's
        TTL deletes lazily, so expiry is checked here too)."""
        item = self._table.get(_key(f"session-{kind}", token_digest(token)))
        if item is None or int(item["expires_at"]["N"]) <= time.time():
            return None
        return Session(
            kind,
            item["tenant"]["S"],
            item["username"]["S"],
            item["admin"]["BOOL"],
            datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC),
        )

    def end_session(self, kind: str, token: str) -> None:
        self._table.delete(Key=_key(f"session-{kind}", token_digest(token)))

    def put_device(self, tenant_id: str, device_id: str) -> None:
        self._put("synctv-device", device_id, tenant_id, {})

    def device_tenant(self, device_id: str) -> str | None:
        return self._get("synctv-device", device_id, lambda item: str(item["tenant"]["S"]))
