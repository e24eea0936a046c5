"""SyncTV REST v1 (``<ssap>`` XML): an offer's promo codes (index, show, create),
``promo_codes/validate`` and the REST Session handshake (login, logout).

Contract and choices where it is silent: docs/protocols/synctv.md. Handlers read
``from promo.protocols import synctv`` and use the names below.
"""

from promo.protocols.synctv.answers import (
    Reply,
    created,
    index,
    session_ended,
    session_started,
    show,
    validated,
)
from promo.protocols.synctv.auth import (
    COOKIE_NAME,
    SyncTvCaller,
    Visitor,
    admin,
    end_session,
    session_or_device,
    start_session,
    visitor,
)
from promo.protocols.synctv.endpoint import endpoint
from promo.protocols.synctv.requests import (
    CreateRequest,
    IndexRequest,
    LoginRequest,
    LogoutRequest,
    ShowRequest,
    ValidateRequest,
)

__all__ = [
    "COOKIE_NAME",
    "CreateRequest",
    "IndexRequest",
    "LoginRequest",
    "LogoutRequest",
    "Reply",
    "ShowRequest",
    "SyncTvCaller",
    "ValidateRequest",
    "Visitor",
    "admin",
    "created",
    "end_session",
    "endpoint",
    "index",
    "session_ended",
    "session_or_device",
    "session_started",
    "show",
    "start_session",
    "validated",
    "visitor",
]
