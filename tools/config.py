"""The declarative configuration: tenants, pools, endpoints and credentials in one YAML file.

``load(path)`` validates the file and names every problem by its key path and line;
``apply(config, stores)`` writes it to the table. Applying a file twice changes nothing, and
removing a pool or credential from the file never deletes codes (see docs/configuration.md).
"""

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from promo.codecs.fields import CodeValue
from promo.domain.credentials import (
    DEFAULT_HOLD_MINUTES,
    DEFAULT_LOOK_BACK_DAYS,
    MaestraEndpoint,
    MaestraOperation,
    MewsAccessToken,
    User,
)
from promo.domain.models import CrmCampaign, Pool, PoolAliases, StepKind, Tenant, Window
from promo.secret_hashing import hash_password, token_digest, verify_password
from promo.services.tenants import SwitchWait, put_tenant
from promo.store.catalog import CatalogStore
from promo.store.codes import CodeStore
from promo.store.credentials import CredentialStore
from promo.store.keys import TENANT_ID


class ConfigError(Exception):
    """Every problem of a configuration file, each with its key path and line."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n  " + "\n  ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvSecret(_Strict):
    """A secret read from an environment variable when the file is applied."""

    env: str = Field(min_length=1)


Secret = Annotated[str, Field(min_length=8)] | EnvSecret


def reveal(secret: Secret) -> str:
    if isinstance(secret, str):
        return secret
    value = os.environ.get(secret.env)
    if not value:
        raise ValueError(f"environment variable {secret.env} is not set")
    return value


class WindowConfig(_Strict):
    start: datetime | None = None
    end: datetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "WindowConfig":
        if self.start and self.end and self.start > self.end:
            raise ValueError("start is after end")
        if any(m is not None and m.tzinfo is None for m in (self.start, self.end)):
            raise ValueError("times need a zone, e.g. 2025-01-01T00:00:00Z")
        return self


class MaestraAlias(_Strict):
    external_id: str = Field(min_length=1)


class CrmAlias(_Strict):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    alternative_code: str | None = None
    type: Literal["DISCOUNT_PROMOTION", "REWARD_PROMOTION"] = "DISCOUNT_PROMOTION"
    distribution_method: Literal["UPON_REQUEST", "INSTANT"] = "UPON_REQUEST"
    state: Literal["POSTED", "DRAFT"] = "POSTED"
    description: str | None = None
    long_description: str | None = None
    short_description: str | None = None


class SyncTvAlias(_Strict):
    offer_id: int = Field(ge=1)


class MewsAlias(_Strict):
    voucher_id: UUID


class Aliases(_Strict):
    maestra: MaestraAlias | None = None
    crm: CrmAlias | None = None
    synctv: SyncTvAlias | None = None
    mews: MewsAlias | None = None


class PoolConfig(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str = Field(min_length=1)
    description: str | None = None
    aliases: Aliases = Aliases()
    issue_window: WindowConfig = WindowConfig()
    default_validity_days: int | None = Field(default=None, ge=1, le=3650)
    shard_count: int = Field(default=4, ge=1, le=1000)
    # Times each code can be redeemed; a code is used up at its last (docs/lifecycle.md).
    redemptions_per_code: int = Field(default=1, ge=1, le=1000)
    # The most codes of the pool one recipient is ever issued, on every issuing path.
    max_codes_per_recipient: int | None = Field(default=None, ge=1, le=1_000_000)
    # Available codes at or below which the pool is low: PoolLow is published (and the
    # PoolsLow metric counted) when the count falls to it (docs/events.md). Unset: never low.
    low_watermark: int | None = Field(default=None, ge=1, le=100_000_000)
    # Demo data: values added once, when the pool has no codes yet.
    # Demo data too follows the value policy (promo.domain.values): refused, never repaired.
    seed_codes: list[CodeValue] = Field(default_factory=list, max_length=1000)


class MaestraOperationConfig(_Strict):
    kind: StepKind
    pool: str | None = Field(default=None, description="a pool id; fixes the pool for the step")
    hold_minutes: int | None = Field(
        default=None, ge=1, le=7 * 24 * 60, description="reserve: how long a use is held"
    )

    @model_validator(mode="after")
    def _hold_only_for_reservations(self) -> "MaestraOperationConfig":
        if self.hold_minutes is not None and self.kind is not StepKind.RESERVE:
            raise ValueError("hold_minutes is for operations of kind reserve only")
        return self


class MaestraEndpointConfig(_Strict):
    id: str = Field(min_length=1)
    secret_key: Secret | None = None
    operations: dict[str, MaestraOperationConfig] = Field(default_factory=dict)
    # How many days back a request may date itself (executionDateTimeUtc); 0: not at all.
    look_back_days: int = Field(default=DEFAULT_LOOK_BACK_DAYS, ge=0, le=366)


class UnitConfig(_Strict):
    """A CRM.COM user's unit, as CRM.COM's ``log_information`` shows it (``id``, ``name``)."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)


class UserConfig(_Strict):
    username: str = Field(min_length=1)
    password: Secret
    person_name: str | None = None
    email: str | None = None
    admin: bool = True
    # CRM.COM users only: the unit the user works in (stored in its profile as ``unit`` and
    # ``unit_name``): the point of contact of the codes it issues, and ``updated_by_unit``.
    unit: UnitConfig | None = None


class MewsConfig(_Strict):
    enterprise_id: UUID


class TenantConfig(_Strict):
    id: str
    name: str = Field(min_length=1)
    # False: values match, and are unique, without regard to case (docs/values.md).
    case_sensitive: bool = True
    mews: MewsConfig | None = None
    pools: list[PoolConfig] = Field(default_factory=list)
    maestra_endpoints: list[MaestraEndpointConfig] = Field(default_factory=list)
    crm_users: list[UserConfig] = Field(default_factory=list)
    synctv_users: list[UserConfig] = Field(default_factory=list)
    synctv_devices: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _tenant_id(cls, value: str) -> str:
        if not TENANT_ID.match(value):
            raise ValueError("use 1-64 letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _pool_references(self) -> "TenantConfig":
        pools = {pool.id for pool in self.pools}
        if len(pools) != len(self.pools):
            raise ValueError("pool ids repeat")
        if any(user.unit is not None for user in self.synctv_users):
            raise ValueError("synctv_users have no unit (only crm_users do)")
        for endpoint in self.maestra_endpoints:
            for name, operation in endpoint.operations.items():
                if operation.pool is not None and operation.pool not in pools:
                    raise ValueError(f"maestra operation {name}: no pool {operation.pool!r}")
        return self


class MewsTokenConfig(_Strict):
    name: str = Field(min_length=1)
    client_token: Secret
    access_token: Secret
    tenants: list[str] = Field(min_length=1)


class Config(_Strict):
    tenants: list[TenantConfig] = Field(min_length=1)
    mews_tokens: list[MewsTokenConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> "Config":
        tenants = {tenant.id: tenant for tenant in self.tenants}
        if len(tenants) != len(self.tenants):
            raise ValueError("tenant ids repeat")
        for token in self.mews_tokens:
            for tenant_id in token.tenants:
                tenant = tenants.get(tenant_id)
                if tenant is None:
                    raise ValueError(f"mews token {token.name}: no tenant {tenant_id!r}")
                if tenant.mews is None:
                    raise ValueError(f"mews token {token.name}: tenant {tenant_id} has no mews")
        return self


# ---------------------------------------------------------------------- loading


def _line_numbers(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Every key path of the document with its 1-based line number."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines |= _line_numbers(value, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines |= _line_numbers(item, (*path, index))
    return lines


def _describe(location: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> str:
    # pydantic adds union member names ("str", "EnvSecret") to locations; they are not keys.
    keys = tuple(
        part
        for part in location
        if (*_prefix(location, part), part) in lines or isinstance(part, int)
    )
    line = next((lines[keys[:n]] for n in range(len(keys), -1, -1) if keys[:n] in lines), None)
    text = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
    return f"{text or '(top level)'} (line {line})" if line else text or "(top level)"


def _prefix(location: tuple[Any, ...], part: Any) -> tuple[Any, ...]:
    return tuple(location[: location.index(part)])


def load(path: Path) -> Config:
    text = path.read_text()
    try:
        document = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from None
    lines = _line_numbers(root) if root is not None else {}
    try:
        return Config.model_validate(document)
    except ValidationError as exc:
        problems = [
            f"{_describe(tuple(error['loc']), lines)}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigError(path, problems) from None


# ---------------------------------------------------------------------- applying


@dataclass
class ApplyReport:
    tenants: int = 0
    pools: int = 0
    seeded_codes: int = 0
    credentials: int = 0
    unchanged_passwords: list[str] = field(default_factory=list)


def _pool(tenant: TenantConfig, pool: PoolConfig) -> Pool:
    aliases = pool.aliases
    crm = aliases.crm
    return Pool(
        tenant_id=tenant.id,
        pool_id=pool.id,
        name=pool.name,
        description=pool.description,
        aliases=PoolAliases(
            maestra_external_id=aliases.maestra.external_id if aliases.maestra else None,
            crm_campaign=CrmCampaign(**crm.model_dump()) if crm else None,
            synctv_offer_id=aliases.synctv.offer_id if aliases.synctv else None,
            mews_voucher_id=aliases.mews.voucher_id if aliases.mews else None,
        ),
        issue_window=Window(pool.issue_window.start, pool.issue_window.end),
        default_validity_days=pool.default_validity_days,
        shard_count=pool.shard_count,
        redemptions_per_code=pool.redemptions_per_code,
        max_codes_per_recipient=pool.max_codes_per_recipient,
        low_watermark=pool.low_watermark,
    )


def apply(
    config: Config,
    catalog: CatalogStore,
    codes: CodeStore,
    credentials: CredentialStore,
    settle: SwitchWait,
    seed: Any = None,
) -> ApplyReport:
    """Write the configuration. ``seed(pool, values)`` adds demo codes to an empty pool. A
    tenant whose ``case_sensitive`` cannot change as asked refuses (``CaseRuleRefused``)
    before anything of it is written; a switch waits ``settle`` until every function knows of
    it (``services.tenants.put_tenant``)."""
    report = ApplyReport()
    enterprises = {t.id: str(t.mews.enterprise_id) for t in config.tenants if t.mews}
    for tenant in config.tenants:
        enterprise = tenant.mews.enterprise_id if tenant.mews else None
        settings = Tenant(tenant.id, tenant.name, enterprise, tenant.case_sensitive)
        put_tenant(catalog, codes, settings, settle)
        report.tenants += 1
        for pool_config in tenant.pools:
            pool = _pool(tenant, pool_config)
            catalog.put_pool(pool)
            report.pools += 1
            if seed is not None and pool_config.seed_codes:
                report.seeded_codes += seed(pool, pool_config.seed_codes)
        pool_aliases = {
            p.id: (p.aliases.maestra.external_id if p.aliases.maestra else p.id)
            for p in tenant.pools
        }
        for endpoint in tenant.maestra_endpoints:
            key = endpoint.secret_key
            credentials.put_maestra_endpoint(
                MaestraEndpoint(
                    endpoint_id=endpoint.id,
                    tenant_id=tenant.id,
                    secret_key_digest=token_digest(reveal(key)) if key is not None else None,
                    operations={
                        name: MaestraOperation(
                            op.kind,
                            pool_aliases[op.pool] if op.pool else None,
                            op.hold_minutes or DEFAULT_HOLD_MINUTES,
                        )
                        for name, op in endpoint.operations.items()
                    },
                    look_back_days=endpoint.look_back_days,
                )
            )
            report.credentials += 1
        for kind, users in (("crm", tenant.crm_users), ("synctv-user", tenant.synctv_users)):
            for user in users:
                _put_user(credentials, kind, tenant.id, user, report)
        for device in tenant.synctv_devices:
            credentials.put_device(tenant.id, device)
            report.credentials += 1
    for token in config.mews_tokens:
        credentials.put_mews_token(
            MewsAccessToken(
                token_digest=token_digest(reveal(token.access_token)),
                client_token_digest=token_digest(reveal(token.client_token)),
                enterprises={enterprises[t]: t for t in token.tenants},
                portfolio=len(token.tenants) > 1,
                name=token.name,
            )
        )
        report.credentials += 1
    return report


def _put_user(
    credentials: CredentialStore, kind: str, tenant_id: str, user: UserConfig, report: ApplyReport
) -> None:
    password = reveal(user.password)
    existing = credentials.user(kind, tenant_id, user.username)
    # scrypt hashes are salted: keep the stored one when the password is unchanged, so that
    # applying the same file twice writes nothing new.
    unchanged = existing is not None and verify_password(password, existing.password_hash)
    fields = (
        ("person_name", user.person_name),
        ("email", user.email),
        ("unit", user.unit.id if user.unit else None),
        ("unit_name", user.unit.name if user.unit else None),
    )
    profile = {k: v for k, v in fields if v}
    credentials.put_user(
        kind,
        User(
            tenant_id=tenant_id,
            username=user.username,
            password_hash=existing.password_hash
            if existing and unchanged
            else hash_password(password),
            admin=user.admin,
            profile=profile,
        ),
    )
    if unchanged:
        report.unchanged_passwords.append(user.username)
    report.credentials += 1
