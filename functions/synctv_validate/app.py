"""SyncTV ``GET /rest/v1/promo_codes/validate?device=&code=``: whether a code can be redeemed
now (1) or not (-45), in the session's tenant or the device's; a caller with too many -45s in
the current window is refused (429, -30) until it ends."""

from promo.domain import clock
from promo.protocols import synctv
from promo.services import Services, validation


@synctv.endpoint(synctv.ValidateRequest, synctv.session_or_device)
def handler(
    request: synctv.ValidateRequest, caller: synctv.SyncTvCaller, svc: Services
) -> synctv.Reply:
    valid = validation.validate_code(svc, caller.tenant_id, request.code, clock.now(), caller.actor)
    return synctv.validated(valid)
