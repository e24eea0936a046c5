"""SyncTV REST Session: a cookie session from a login with e-mail and password.

Users and devices come from the configuration (``synctv_users``, ``synctv_devices``). A session
belongs to one user of one tenant and carries the user's admin flag; only the SHA-256 of its
token is stored (CredentialStore.start_session), and it ends at a fixed time after login or at
logout. Neither a token nor a password is ever logged.
"""

from datetime import timedelta
from typing import NamedTuple

from promo.domain import clock
from promo.domain.credentials import Session
from promo.domain.errors import AuthenticationFailed, DeviceNotFound, Forbidden, InvalidRequest
from promo.http import HttpRequest
from promo.secret_hashing import decoy_password_hash, new_token, verify_password
from promo.store.credentials import CredentialStore

COOKIE_NAME = "_synctv_session"
COOKIE_PATH = "/rest/v1"
SESSION_KIND = "synctv"
USER_KIND = "synctv-user"
# new_token() makes 43 characters; anything much longer is not ours and is not looked up.
_MAX_TOKEN = 256
_MAX_DEVICE = 256


class SyncTvCaller(NamedTuple):
    """Who asks: a session's user, or (validate only) a registered device."""

    tenant_id: str
    username: str | None = None
    device: str | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this caller (never the session token)."""
        if self.username is not None:
            return f"synctv:{self.username}"
        return f"synctv-device:{self.device}"


class Visitor(NamedTuple):
    """A caller of the session handshake itself: whatever cookie it holds, and whether the
    connection is HTTPS (so the cookie may be marked ``Secure``)."""

    session_token: str | None
    secure: bool


def session_token(request: HttpRequest) -> str | None:
    token = request.cookies.get(COOKIE_NAME, "")
    return token if 0 < len(token) <= _MAX_TOKEN else None


def live_session(credentials: CredentialStore, request: HttpRequest) -> Session | None:
    """The unexpired, not ended session behind the request's cookie, if any."""
    token = session_token(request)
    return None if token is None else credentials.session(SESSION_KIND, token)


def admin(credentials: CredentialStore, request: HttpRequest) -> SyncTvCaller:
    """For index, show and create: a live session of a user with admin rights."""
    session = live_session(credentials, request)
    if session is None:
        raise AuthenticationFailed("This action requires a cookie session; log in first.")
    if not session.admin:
        raise Forbidden("This action requires a cookie session with admin rights.")
    return SyncTvCaller(session.tenant_id, username=session.username)


def session_or_device(credentials: CredentialStore, request: HttpRequest) -> SyncTvCaller:
    """For validate: the session's tenant (any live session: validate needs no admin rights);
    without one, the tenant the ``device`` parameter is registered for."""
    session = live_session(credentials, request)
    if session is not None:
        return SyncTvCaller(session.tenant_id, username=session.username)
    device = request.query.get("device", "")
    if not device:
        raise InvalidRequest("device: required when there is no cookie session.", "device")
    tenant_id = credentials.device_tenant(device) if len(device) <= _MAX_DEVICE else None
    if tenant_id is None:
        raise DeviceNotFound
    return SyncTvCaller(tenant_id, device=device)


def visitor(credentials: CredentialStore, request: HttpRequest) -> Visitor:
    """For login and logout: no session needed."""
    secure = request.headers.get("x-forwarded-proto", "").lower() == "https"
    return Visitor(session_token(request), secure)


def start_session(
    credentials: CredentialStore, login: str, password: str, lifetime: timedelta
) -> tuple[str, Session]:
    """A new session token for the user ``login`` (AuthenticationFailed, saying nothing about
    which of the two was wrong, otherwise)."""
    user = credentials.user(USER_KIND, None, login)
    stored = user.password_hash if user is not None else decoy_password_hash()
    if not verify_password(password, stored) or user is None:
        raise AuthenticationFailed("Invalid e-mail or password.")
    token = new_token()
    session = Session(
        SESSION_KIND, user.tenant_id, user.username, user.admin, clock.now() + lifetime
    )
    credentials.start_session(token, session)
    return token, session


def end_session(credentials: CredentialStore, token: str | None) -> None:
    if token is not None:
        credentials.end_session(SESSION_KIND, token)


def session_cookie(token: str, max_age: int, secure: bool) -> str:
    attributes = [f"{COOKIE_NAME}={token}", f"Path={COOKIE_PATH}", f"Max-Age={max_age}"]
    attributes += ["HttpOnly", "SameSite=Lax"] + (["Secure"] if secure else [])
    return "; ".join(attributes)


def expired_cookie(secure: bool) -> str:
    attributes = [f"{COOKIE_NAME}=", f"Path={COOKIE_PATH}", "Max-Age=0"]
    attributes += ["Expires=Thu, 01 Jan 1970 00:00:00 GMT", "HttpOnly", "SameSite=Lax"]
    return "; ".join(attributes + (["Secure"] if secure else []))
