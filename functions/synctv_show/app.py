"""SyncTV ``GET /rest/v1/offers/{offer_id}/promo_codes/{id}``: one promo code of an offer."""

from promo import services
from promo.codecs import synctv
from promo.domain.errors import CodeNotFound


@synctv.endpoint(synctv.ShowRequest, synctv.admin)
def handler(
    request: synctv.ShowRequest, caller: synctv.SyncTvCaller, svc: services.Services
) -> synctv.Reply:
    pool = services.find_pool(svc, caller.tenant_id, "synctv", str(request.offer_id))
    code = svc.codes.get_by_number(caller.tenant_id, request.id)
    if code is None or code.pool_id != pool.pool_id:  # another offer's code is not this offer's
        raise CodeNotFound
    return synctv.show(code, request.offer_id)
