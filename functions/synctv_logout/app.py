"""SyncTV REST Session ``DELETE /rest/v1/session``: end the cookie's session (if any) and
expire the cookie."""

from promo import services
from promo.protocols import synctv


@synctv.endpoint(synctv.LogoutRequest, synctv.visitor)
def handler(
    request: synctv.LogoutRequest, caller: synctv.Visitor, svc: services.Services
) -> synctv.Reply:
    synctv.end_session(svc.credentials, caller.session_token)
    return synctv.session_ended(caller)
