"""CRM.COM authentication: ``POST authentication/token`` logs a user of an organisation (our
tenant) in and returns a token; every other method carries it as the ``token`` parameter;
``POST authentication/token/release`` ends it.

Tokens are random (``new_token``), stored only as SHA-256 digests (``start_session``), expire
``CRM_TOKEN_SECONDS`` after login whether used or not (CRM.COM R12+), and are never logged.
"""

from datetime import timedelta
from typing import NamedTuple

from promo.domain import clock
from promo.domain.credentials import Session, User
from promo.domain.errors import AuthenticationFailed
from promo.domain.models import PointOfContact
from promo.secret_hashing import decoy_password_hash, new_token, verify_password
from promo.store.credentials import CredentialStore

KIND = "crm"
MAX_TOKEN_LENGTH = 512
LOGIN_REFUSED = "Invalid username, password or organisation."
TOKEN_REFUSED = "The token is missing, unknown, expired or released."  # noqa: S105


class CrmCaller(NamedTuple):
    """The user behind a live token, with what CRM.COM echoes about it."""

    tenant_id: str
    username: str
    person_name: str | None = None
    email: str | None = None
    unit: PointOfContact | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this user (never the token)."""
        return f"crm:{self.username}"


def login(
    credentials: CredentialStore,
    organisation: str,
    username: str,
    password: str,
    lifetime: timedelta,
) -> str:
    """A new token for the user of ``organisation``, valid for ``lifetime``;
    AuthenticationFailed, never saying why."""
    user = credentials.user(KIND, organisation, username)
    if user is None:
        verify_password(password, decoy_password_hash())
        raise AuthenticationFailed(LOGIN_REFUSED)
    if not verify_password(password, user.password_hash):
        raise AuthenticationFailed(LOGIN_REFUSED)
    token = new_token()
    expires_at = clock.now() + lifetime
    credentials.start_session(
        token, Session(KIND, user.tenant_id, user.username, False, expires_at)
    )
    return token


def authenticate(credentials: CredentialStore, token: object) -> CrmCaller:
    """The caller behind a live token; AuthenticationFailed for a missing, malformed, unknown,
    expired or released one, and for a user removed since login."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise AuthenticationFailed(TOKEN_REFUSED)
    session = credentials.session(KIND, token)
    if session is None:
        raise AuthenticationFailed(TOKEN_REFUSED)
    user = credentials.user(KIND, session.tenant_id, session.username)
    if user is None:
        raise AuthenticationFailed(TOKEN_REFUSED)
    return _caller(user)


def release(credentials: CredentialStore, token: object) -> None:
    """End the session of a live token (AuthenticationFailed if it is not one)."""
    authenticate(credentials, token)
    credentials.end_session(KIND, str(token))


def _caller(user: User) -> CrmCaller:
    profile = user.profile
    unit_id = profile.get("unit")
    unit = PointOfContact(unit_id, profile.get("unit_name")) if unit_id else None
    return CrmCaller(
        user.tenant_id, user.username, profile.get("person_name"), profile.get("email"), unit
    )
