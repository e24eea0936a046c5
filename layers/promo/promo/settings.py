"""The service's configuration, read from the environment once, in this module only.

A plain pydantic model fed from ``os.environ`` rather than ``pydantic-settings``: it validates the
same way and keeps ~70 ms of imports off every cold start.
"""

import os

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    table_name: str = Field(default="promo-codes", alias="TABLE_NAME", min_length=3)
    # Set to DynamoDB Local's URL for local runs and tests; unset on AWS.
    dynamodb_endpoint_url: str | None = Field(default=None, alias="DYNAMODB_ENDPOINT_URL")
    aws_region: str = Field(default="us-east-1", alias="AWS_REGION")

    @field_validator("dynamodb_endpoint_url", "async_queue_url", "event_bus_name")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    # The queue behind Maestra's /v3/operations/async (its worker performs the operations).
    async_queue_url: str | None = Field(default=None, alias="ASYNC_QUEUE_URL")
    # The EventBridge bus the change stream consumer publishes domain events to (docs/events.md).
    event_bus_name: str | None = Field(default=None, alias="EVENT_BUS_NAME")
    service_name: str = Field(default="promo-codes", alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field(default="PromoCodes", alias="POWERTOOLS_METRICS_NAMESPACE")
    # How long a resolved credential or pool is trusted before it is read again: the upper
    # bound on how late a revoked credential or an edited pool takes effect in a warm function.
    config_cache_seconds: float = Field(default=30.0, alias="CONFIG_CACHE_SECONDS", ge=0, le=300)
    # Candidates fetched per query of a shard of a pool's available index; one query feeds this
    # many claims in a warm function, so the steady-state cost of an issue stays near one write.
    claim_page_size: int = Field(default=50, alias="CLAIM_PAGE_SIZE", ge=1, le=1000)
    # A claim tries at most four times this many candidates (a write lost to a concurrent
    # claimer, after which it reads a fresh page, or one passed over as expired since its page
    # was read) before it answers that the pool is too busy.
    claim_max_attempts: int = Field(default=8, alias="CLAIM_MAX_ATTEMPTS", ge=1, le=100)
    # Parallel writers for a bulk add larger than one transaction.
    bulk_write_concurrency: int = Field(default=4, alias="BULK_WRITE_CONCURRENCY", ge=1, le=32)
    # A staged bulk add that was neither committed nor rolled back (its process died) stops
    # blocking its values after this long: the longest timeout of a function that adds codes
    # (template.yaml) plus a margin, so a stage cannot outlive the function that wrote it.
    staged_write_expiry_seconds: int = Field(
        default=60, alias="STAGED_WRITE_EXPIRY_SECONDS", ge=30, le=86400
    )
    # Lifetime of a SyncTV REST cookie session, fixed at login (docs/protocols/synctv.md).
    synctv_session_seconds: int = Field(
        default=3600, alias="SYNCTV_SESSION_SECONDS", ge=1, le=30 * 86400
    )
    # Lifetime of a CRM.COM login token: absolute, from login, as CRM.COM R12+ (two hours).
    crm_token_seconds: int = Field(default=7200, alias="CRM_TOKEN_SECONDS", ge=1, le=86400)
    # SyncTV validate: answers other than "valid" (misses) one caller (a device, or a session's
    # user) may get per fixed window before it is refused until the window ends (HTTP 429);
    # 0 turns the limit off. docs/security.md (threat 20) gives the bound it guarantees.
    validate_miss_limit: int = Field(default=20, alias="VALIDATE_MISS_LIMIT", ge=0, le=1_000_000)
    validate_miss_window_seconds: int = Field(
        default=600, alias="VALIDATE_MISS_WINDOW_SECONDS", ge=10, le=86400
    )

    # Maestra: how far ahead of the time a request was received its executionDateTimeUtc may be
    # (the client's clock against ours); the same margin widens the endpoint's look-back.
    maestra_clock_skew_seconds: int = Field(
        default=300, alias="MAESTRA_CLOCK_SKEW_SECONDS", ge=0, le=3600
    )
    # Mews: requests one AccessToken may make per fixed window before it is answered 429 with
    # Retry-After until the window ends, as Mews' Connector API guidelines limit it (200 per
    # 30 s); 0 turns the limit off. docs/protocols/mews.md.
    mews_request_limit: int = Field(default=200, alias="MEWS_REQUEST_LIMIT", ge=0, le=1_000_000)
    mews_request_window_seconds: int = Field(
        default=30, alias="MEWS_REQUEST_WINDOW_SECONDS", ge=1, le=86400
    )

    @classmethod
    def from_environment(cls) -> "Settings":
        """The settings of this process, as its environment gives them."""
        return cls.model_validate(dict(os.environ))
