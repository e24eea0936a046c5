"""SyncTV ``GET /rest/v1/offers/{offer_id}/promo_codes``: an offer's promo codes, newest first,
optionally only consumed or unconsumed ones; every one (up to a maximum) unless ``offset``/
``limit`` page them. Deleted codes are not listed."""

from promo.protocols import synctv
from promo.services import Services, listing


@synctv.endpoint(synctv.IndexRequest, synctv.admin)
def handler(
    request: synctv.IndexRequest, caller: synctv.SyncTvCaller, svc: Services
) -> synctv.Reply:
    page = listing.pool_codes(
        svc,
        caller.tenant_id,
        "synctv",
        str(request.offer_id),
        request.consumed,
        request.offset,
        request.page_size,
        include_deleted=False,
    )
    return synctv.index(page, request.offer_id)
