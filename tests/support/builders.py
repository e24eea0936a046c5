"""Small builders for domain objects, so tests state only what matters to them."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from promo.domain.models import CrmCampaign, NewCode, Pool, PoolAliases, Tenant, Window
from promo.services.tenants import SwitchWait

# A switch of a tenant's case rule with no wait: tests have no function caching the tenant.
NO_WAIT = SwitchWait(0, lambda _seconds: None)

ACTOR = "test:operator"


def moment(days: float = 0) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def pool(
    tenant_id: str = "acme",
    pool_id: str = "spring",
    shard_count: int = 4,
    issue_window: Window | None = None,
    default_validity_days: int | None = None,
    offer_id: int = 2,
    redemptions_per_code: int = 1,
    max_codes_per_recipient: int | None = None,
    low_watermark: int | None = None,
) -> Pool:
    return Pool(
        tenant_id=tenant_id,
        pool_id=pool_id,
        name=f"{pool_id} pool",
        description=f"Codes of {pool_id}",
        aliases=PoolAliases(
            maestra_external_id=f"{pool_id}-ext",
            crm_campaign=CrmCampaign(
                id=uuid4().hex.upper(),
                name=f"{pool_id} campaign",
                alternative_code=f"{pool_id.upper()}4",
            ),
            synctv_offer_id=offer_id,
            mews_voucher_id=uuid4(),
        ),
        issue_window=issue_window or Window(),
        default_validity_days=default_validity_days,
        shard_count=shard_count,
        redemptions_per_code=redemptions_per_code,
        max_codes_per_recipient=max_codes_per_recipient,
        low_watermark=low_watermark,
    )


def tenant(tenant_id: str = "acme", case_sensitive: bool = True) -> Tenant:
    return Tenant(tenant_id, tenant_id.title(), case_sensitive=case_sensitive)


def new_codes(
    pool_id: str, count: int, prefix: str = "CODE", validity: Window | None = None
) -> list[NewCode]:
    return [
        NewCode(pool_id, f"{prefix}{index:05d}", validity or Window()) for index in range(count)
    ]
