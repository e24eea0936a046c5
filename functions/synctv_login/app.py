"""SyncTV REST Session ``POST /rest/v1/session``: log in with e-mail and password; the answer
sets the session cookie."""

from datetime import timedelta

from promo.protocols import synctv
from promo.services import Services


@synctv.endpoint(synctv.LoginRequest, synctv.visitor)
def handler(request: synctv.LoginRequest, caller: synctv.Visitor, svc: Services) -> synctv.Reply:
    lifetime = svc.settings.synctv_session_seconds
    token, _ = synctv.start_session(
        svc.credentials, request.login, request.password, timedelta(seconds=lifetime)
    )
    return synctv.session_started(token, lifetime, caller)
