"""Mews' error table: every domain exception's HTTP status, in one place (the body is always
``{"Message", "RequestId"}``)."""

from promo.codecs.errors import ErrorTable
from promo.domain.errors import (
    AuthenticationFailed,
    ConcurrentChange,
    DuplicateValues,
    Forbidden,
    PromoError,
    StoreUnavailable,
    TooManyAttempts,
)

# Mews' Connector API guidelines ("Responses"): 400 for an error of the client application,
# "a malformed request or invalid identifier of a resource"; 403 when "server-side validation
# fails or a business-logic check is violated"; 429 past the request limit.
ERRORS: ErrorTable[int] = ErrorTable(
    {
        AuthenticationFailed: 401,
        Forbidden: 403,  # an enterprise outside the token's scope
        DuplicateValues: 403,  # a business rule: a value is unique within its enterprise
        TooManyAttempts: 429,
        # Another add of the values has not finished: Mews clients retry a 409.
        ConcurrentChange: 409,
        StoreUnavailable: 500,
        PromoError: 400,  # malformed or invalid requests, and ids or vouchers that name nothing
    },
    fallback=500,
)
