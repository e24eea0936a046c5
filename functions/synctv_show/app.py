"""SyncTV ``GET /rest/v1/offers/{offer_id}/promo_codes/{id}``: one promo code of an offer; a
deleted one is not found, as index does not list it."""

from promo.protocols import synctv
from promo.services import Services, catalog


@synctv.endpoint(synctv.ShowRequest, synctv.admin)
def handler(
    request: synctv.ShowRequest, caller: synctv.SyncTvCaller, svc: Services
) -> synctv.Reply:
    code = catalog.pool_code(
        svc, caller.tenant_id, "synctv", str(request.offer_id), request.id, include_deleted=False
    )
    return synctv.show(code, request.offer_id)
