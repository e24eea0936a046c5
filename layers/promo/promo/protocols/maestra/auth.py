"""Maestra (Mindbox) authentication: the endpoint names the tenant; endpoints configured with a
secret key require ``Authorization: SecretKey <key>`` or the older
``Authorization: Mindbox secretKey="<key>"``.

Every authentication failure (no or unknown endpoint, missing, malformed or wrong key) is the
same refusal, word for word, so an answer never tells whether an endpoint id exists."""

import re
from typing import NamedTuple

from promo.domain.credentials import MaestraEndpoint
from promo.domain.errors import AuthenticationFailed
from promo.secret_hashing import matches
from promo.store.credentials import CredentialStore

_SECRET_KEY = re.compile(
    r'^\s*(?:SecretKey\s+(?P<plain>\S+)|Mindbox\s+secretKey="(?P<quoted>[^"]+)")\s*$'
)


class MaestraCaller(NamedTuple):
    """A request authenticated with an endpoint's secret key."""

    endpoint: MaestraEndpoint

    @property
    def actor(self) -> str:
        return f"maestra:{self.endpoint.endpoint_id}"


def presented_key(authorization: str | None) -> str | None:
    match = _SECRET_KEY.match(authorization or "")
    if match is None:
        return None
    return match.group("plain") or match.group("quoted")


# The one text of every Maestra authentication failure (docs/security.md).
REFUSAL = "Invalid endpoint or secret key."


def authenticate(
    credentials: CredentialStore, endpoint_id: str | None, authorization: str | None
) -> MaestraCaller:
    if not endpoint_id or len(endpoint_id) > 256:
        raise AuthenticationFailed(REFUSAL)
    endpoint = credentials.maestra_endpoint(endpoint_id)
    if endpoint is None:
        raise AuthenticationFailed(REFUSAL)
    if endpoint.secret_key_digest is not None:
        key = presented_key(authorization)
        if key is None or not matches(key, endpoint.secret_key_digest):
            raise AuthenticationFailed(REFUSAL)
    return MaestraCaller(endpoint)
