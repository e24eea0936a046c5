"""Mews' error table: every domain exception's HTTP status, in one place (the body is always
``{"Message", "RequestId"}``)."""

from promo.codecs.errors import ErrorTable
from promo.domain.errors import (
    AuthenticationFailed,
    ConcurrentChange,
    Forbidden,
    PromoError,
    StoreUnavailable,
)

ERRORS: ErrorTable[int] = ErrorTable(
    {
        AuthenticationFailed: 401,
        Forbidden: 403,
        # Another add of the values has not finished: Mews clients retry a 409.
        ConcurrentChange: 409,
        StoreUnavailable: 500,
        PromoError: 400,  # invalid or malformed requests, unknown ids, duplicate values
    },
    fallback=500,
)
