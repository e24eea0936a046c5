"""SyncTV REST Session ``DELETE /rest/v1/session``: end the cookie's session (if any) and
expire the cookie."""

from promo.protocols import synctv
from promo.services import Services


@synctv.endpoint(synctv.LogoutRequest, synctv.visitor)
def handler(request: synctv.LogoutRequest, caller: synctv.Visitor, svc: Services) -> synctv.Reply:
    synctv.end_session(svc.credentials, caller.session_token)
    return synctv.session_ended(caller)
