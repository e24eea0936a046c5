"""SyncTV ``POST /rest/v1/offers/{offer_id}/promo_codes?count=&length=``: generate new random
codes, unique across the tenant whatever protocol added its other codes."""

from promo import services
from promo.protocols import synctv


@synctv.endpoint(synctv.CreateRequest, synctv.admin)
def handler(
    request: synctv.CreateRequest, caller: synctv.SyncTvCaller, svc: services.Services
) -> synctv.Reply:
    pool = services.find_pool(svc, caller.tenant_id, "synctv", str(request.offer_id))
    services.generate_codes(svc, pool, request.count, request.length, caller.actor)
    return synctv.created()
