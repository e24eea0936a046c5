"""CRM.COM's error table: every domain exception's ``status`` object, in one place.

Refusals are HTTP 200 with a non-OK ``status.code`` (clients key off it), server faults 5xx in the
same envelope; the codes are ours (docs/protocols/crm.md).
"""

from typing import NamedTuple

from promo.codecs.errors import ErrorTable
from promo.domain.errors import (
    AuthenticationFailed,
    InvalidRequest,
    MalformedRequest,
    NoCodeAvailable,
    OutsideIssueWindow,
    PoolClosed,
    PoolNotFound,
    PromoError,
    RecipientLimitReached,
    StoreUnavailable,
)


class CrmStatus(NamedTuple):
    """A refusal's ``status`` object, and the HTTP status it travels with."""

    code: str
    description: str
    http_status: int = 200


ERRORS: ErrorTable[CrmStatus] = ErrorTable(
    {
        AuthenticationFailed: CrmStatus("AUTHENTICATION_FAILED", "Authentication failed"),
        MalformedRequest: CrmStatus("MALFORMED_REQUEST", "The request could not be read"),
        InvalidRequest: CrmStatus("INVALID_PARAMETER", "Invalid request parameters"),
        PoolNotFound: CrmStatus("PROMOTION_CAMPAIGN_NOT_FOUND", "Promotion campaign not found"),
        PoolClosed: CrmStatus(
            "PROMOTION_CAMPAIGN_NOT_ALLOWED", "Promotion campaign cannot provide promo codes"
        ),
        NoCodeAvailable: CrmStatus(
            "NO_PROMO_CODE_AVAILABLE", "No promo code is left in the promotion campaign"
        ),
        RecipientLimitReached: CrmStatus(
            "RECIPIENT_LIMIT_REACHED",
            "The recipient already holds the most promo codes of this campaign it may",
        ),
        OutsideIssueWindow: CrmStatus(
            "PROMOTION_CAMPAIGN_NOT_EFFECTIVE", "Promotion campaign is not effective now"
        ),
        StoreUnavailable: CrmStatus("SERVICE_UNAVAILABLE", "Service unavailable", 503),
        PromoError: CrmStatus("REQUEST_REFUSED", "The request was refused"),
    },
    fallback=CrmStatus("UNEXPECTED_ERROR", "Unexpected error", 500),
)
