"""Validate: whether a code can be redeemed now, with the failed-answer limit per caller."""

from datetime import datetime

from promo.domain.errors import (
    StoreUnavailable,
)
from promo.domain.lifecycle import is_redeemable
from promo.observability import count, logger
from promo.services import Services


def validate_code(svc: Services, tenant_id: str, value: str, at: datetime, caller: str) -> bool:
    """Whether the code can be redeemed now: one strongly consistent read. Another tenant's
    code, an unknown one and an unusable one all answer False alike.

    ``caller`` (who asks, e.g. a device) may get only so many False answers per window
    (promo/domain/attempts.py): each one costs one counter write, and past the limit every
    request of the caller, whatever its code, is refused with TooManyAttempts, without a read.
    """
    limit = svc.validate_limit
    key = (tenant_id, caller)
    limit.blocked.check(key, at)
    code = svc.codes.get(tenant_id, value)
    if code is not None and is_redeemable(code, at):
        return True
    if not limit.limit.enabled:
        return False
    window = limit.limit.window(at)
    try:
        misses = limit.counters.count_miss(tenant_id, caller, window)
    except StoreUnavailable as failed:
        # Answer the miss anyway: refusing would not hide it (a hit never writes, so any
        # refusal here would itself say "miss"), and it would fail an honest client.
        logger.warning("Validate miss not counted", extra={"reason": failed.message})
        count("UncountedValidateMisses")
        return False
    if limit.limit.exceeded(misses):
        if misses == limit.limit.limit + 1:  # once per window, by whichever instance crosses
            logger.warning(
                "Validate caller over the miss limit", extra={"tenant": tenant_id, "caller": caller}
            )
            count("ValidateCallersBlocked")
        raise limit.blocked.block(key, window, at)
    return False
