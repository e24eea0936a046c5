"""The SyncTV world: the demo configuration (config/demo.yaml: tenant ``demo``, offers 2 and 1020,
an admin, a viewer and the spec's device) plus a second tenant ``other`` with its own admin,
device and an offer 2 of its own; and events for SyncTV requests."""

from dataclasses import dataclass
from typing import Any

import promo.bootstrap
from promo.domain.credentials import User
from promo.domain.models import NewCode
from promo.protocols.synctv.auth import COOKIE_NAME
from promo.secret_hashing import hash_password
from promo.services import Services
from tests.support.builders import ACTOR, pool, tenant
from tools.admin import apply_config
from tools.lambda_runtime import http_api_event
from tools.template import ROOT


@dataclass(frozen=True)
class Login:
    email: str
    password: str


DEMO_ADMIN = Login("admin@demo.example", "demo-synctv-password")
DEMO_VIEWER = Login("viewer@demo.example", "demo-viewer-password")
DEMO_DEVICE = "urn:synctv:devices:web:11223344"
OTHER_ADMIN = Login("admin@other.example", "other-synctv-password")
OTHER_DEVICE = "urn:synctv:devices:web:99887766"
OTHER_CODE = "OTHER-ONLY-1"
SPRING_OFFER, WELCOME_OFFER = 2, 1020
SPRING_VOUCHER = "fe568bbd-1ecb-4bb2-bf77-96c3698de20d"  # the same pool, as Mews names it


def seed_synctv() -> Services:
    """Apply the demo configuration and add tenant ``other``; the services handlers use."""
    svc = promo.bootstrap.services()
    apply_config(ROOT / "config" / "demo.yaml", svc)
    svc.catalog.put_tenant(tenant("other"))
    offer = pool("other", "other-offer", offer_id=SPRING_OFFER)
    svc.catalog.put_pool(offer)
    svc.codes.add("other", {offer.pool_id: offer}, [NewCode(offer.pool_id, OTHER_CODE)], ACTOR)
    user = User("other", OTHER_ADMIN.email, hash_password(OTHER_ADMIN.password), admin=True)
    svc.credentials.put_user("synctv-user", user)
    svc.credentials.put_device("other", OTHER_DEVICE)
    return svc


def synctv_event(
    method: str,
    path: str,
    route_key: str,
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    session: str | None = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API event as a SyncTV client's request arrives, ``session`` as its cookie."""
    all_headers = dict(headers or {})
    if session is not None:
        all_headers["cookie"] = f"{COOKIE_NAME}={session}"
    raw_query = "&".join(f"{name}={value}" for name, value in (query or {}).items())
    return http_api_event(
        method, path, route_key, body, all_headers, query, path_parameters, raw_query
    )


def with_session(event: dict[str, Any], session: str | None) -> dict[str, Any]:
    """A stored event with its placeholder cookie replaced (or removed)."""
    changed = {**event}
    changed.pop("cookies", None)
    if session is not None:
        changed["cookies"] = [f"{COOKIE_NAME}={session}"]
    return changed
