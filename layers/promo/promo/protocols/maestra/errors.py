"""Maestra's error tables: every domain exception's place in a Mindbox answer, in one place.

A request-level refusal is an error answer (HTTP status and request ``status``); a business
outcome of a performed step is part of a ``Success`` answer (``issueStatus``), or, for a redeem,
a ValidationError message. Choices where the page is silent: docs/protocols/maestra.md.
"""

from promo.codecs.errors import ErrorTable
from promo.domain.errors import (
    AuthenticationFailed,
    CodeExpired,
    CodeNotFound,
    CodeNotYetValid,
    Forbidden,
    IdempotencyConflict,
    InvalidRequest,
    MalformedRequest,
    NoAsyncQueue,
    NoCodeAvailable,
    NotAvailableForIssue,
    NothingHeld,
    NothingToRollBack,
    NoUseToHold,
    OutsideIssueWindow,
    PoolNotFound,
    StoreUnavailable,
    TransitionRefused,
    UsesHeld,
)
from promo.protocols.maestra.requests import BodyInvalid, UnknownOperation

# Request-level refusals: (HTTP status, request status). Business outcomes never come here.
ERRORS: ErrorTable[tuple[int, str]] = ErrorTable(
    {
        AuthenticationFailed: (401, "ProtocolError"),
        Forbidden: (403, "ProtocolError"),
        UnknownOperation: (400, "ProtocolError"),
        MalformedRequest: (400, "ProtocolError"),
        IdempotencyConflict: (400, "ProtocolError"),
        # The client's integration can act on it (send to /sync); a retry cannot help.
        NoAsyncQueue: (400, "ProtocolError"),
        BodyInvalid: (200, "ValidationError"),
        InvalidRequest: (200, "ValidationError"),
        StoreUnavailable: (500, "InternalServerError"),
    },
    fallback=(500, "InternalServerError"),
)

# A performed issue step's refusal: the ``issueStatus`` of its Success answer.
ISSUE_STATUSES: ErrorTable[str] = ErrorTable(
    {
        CodeNotFound: "PromoCodeNotFound",
        PoolNotFound: "PromoCodePoolNotFound",
        NoCodeAvailable: "NoAvailablePromoCodesInPool",
        NotAvailableForIssue: "NotAvailableForIssue",
        OutsideIssueWindow: "NotInIssueDateTimeRange",
        TransitionRefused: "NotAvailableForIssue",
    },
    fallback="NotAvailableForIssue",
)

# A redeem that could not happen: the message of its ValidationError (the page has no status).
REDEEM_REFUSALS: ErrorTable[str] = ErrorTable(
    {
        CodeNotFound: "Promo code not found.",
        CodeExpired: "Promo code has expired.",
        CodeNotYetValid: "Promo code is not valid yet.",
        OutsideIssueWindow: "Promo code is outside its validity period.",
        NothingToRollBack: "Promo code has no redemption to roll back.",
        NoUseToHold: "Promo code has no use free to hold: it is used, held, blocked or deleted.",
        UsesHeld: "Promo code's remaining uses are held for other customers.",
        NothingHeld: "No use of this promo code is held for this customer.",
    },
    fallback="Promo code cannot be redeemed: it is used, blocked or deleted.",
)
