"""SyncTV ``GET /rest/v1/offers/{offer_id}/promo_codes``: an offer's promo codes, newest first,
optionally only consumed or unconsumed ones, ``offset``/``limit`` paged."""

from promo import services
from promo.protocols import synctv


@synctv.endpoint(synctv.IndexRequest, synctv.admin)
def handler(
    request: synctv.IndexRequest, caller: synctv.SyncTvCaller, svc: services.Services
) -> synctv.Reply:
    pool = services.find_pool(svc, caller.tenant_id, "synctv", str(request.offer_id))
    page = services.pool_codes(svc, pool, request.consumed, request.offset, request.limit)
    return synctv.index(page, request.offer_id)
