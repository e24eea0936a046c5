"""Requests per credential and window: Mews' limit of so many requests per AccessToken."""

from datetime import datetime

from promo.domain.errors import StoreUnavailable
from promo.observability import count, logger
from promo.services import ValidateLimit


def count_request(limit: ValidateLimit, tenant_id: str, caller: str, at: datetime) -> None:
    """Count one request of ``caller`` (kept in ``tenant_id``'s counters); TooManyAttempts,
    with the seconds to the window's end, for the request that goes past the limit and for
    every request of the caller after it until the window ends.

    One atomic counter write per request (promo/store/attempts.py); a caller this instance
    knows to be over the limit is refused before anything is read or written. A counter
    write that fails lets the request through: the limit protects the service, and refusing
    an honest client because a counter could not be written would not.
    """
    if not limit.limit.enabled:
        return
    key = (tenant_id, caller)
    limit.blocked.check(key, at)
    window = limit.limit.window(at)
    try:
        requests = limit.counters.count_request(tenant_id, caller, window)
    except StoreUnavailable as failed:
        logger.warning("Request not counted", extra={"reason": failed.message})
        count("UncountedRequests")
        return
    if limit.limit.exceeded(requests):
        if requests == limit.limit.limit + 1:  # once per window, by whichever instance crosses
            logger.warning("Caller over the request limit", extra={"tenant": tenant_id})
            count("RequestLimitedCallers")
        raise limit.blocked.block(key, window, at)
