"""SyncTV's error table: every domain exception's HTTP status, negative ``code`` and message,
in one place."""

from typing import NamedTuple

from promo.codecs.errors import ErrorTable
from promo.domain.errors import (
    AuthenticationFailed,
    CodeNotFound,
    CodeSpaceExhausted,
    DeviceNotFound,
    DuplicateValues,
    Forbidden,
    InvalidRequest,
    MalformedRequest,
    PoolNotFound,
    PromoError,
    StoreUnavailable,
    TooManyAttempts,
)


class SyncTvError(NamedTuple):
    status: int
    code: int
    # None: the refusal's own message.
    message: str | None = None


UNEXPECTED = SyncTvError(500, -1, "An unexpected error occurred; the request may be retried.")

# Every refusal is HTTP 400 with a negative code, as SyncTV documents for its API ("On Error:
# HTTP 400"), except the validate limit's 429 (the status API Gateway's own throttling answers);
# -2 and -4 are SyncTV's own codes, the others are ours (docs/protocols/synctv.md).
ERRORS: ErrorTable[SyncTvError] = ErrorTable(
    {
        InvalidRequest: SyncTvError(400, -2),  # ARGUMENT_MISSING: missing or invalid argument
        MalformedRequest: SyncTvError(400, -2),
        DeviceNotFound: SyncTvError(400, -4),  # RECORD_NOT_FOUND, as for an unknown client key
        PoolNotFound: SyncTvError(400, -4, "Offer not found."),
        CodeNotFound: SyncTvError(400, -4),
        AuthenticationFailed: SyncTvError(400, -10),
        Forbidden: SyncTvError(400, -11),
        DuplicateValues: SyncTvError(400, -20, "Promo codes could not be generated; retry."),
        CodeSpaceExhausted: SyncTvError(400, -20),
        # The same body whatever the code asked about: it says nothing about the code.
        TooManyAttempts: SyncTvError(429, -30, "Too many invalid promo codes; try again later."),
        StoreUnavailable: UNEXPECTED,
        PromoError: SyncTvError(400, -2),
    },
    fallback=UNEXPECTED,
)


def error_headers(refused: PromoError) -> dict[str, str]:
    if isinstance(refused, TooManyAttempts):
        return {"retry-after": str(refused.retry_after)}
    return {}
