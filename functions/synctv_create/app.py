"""SyncTV ``POST /rest/v1/offers/{offer_id}/promo_codes?count=&length=``: generate new random
codes, unique across the tenant whatever protocol added its other codes."""

from promo.protocols import synctv
from promo.services import Services, catalog


@synctv.endpoint(synctv.CreateRequest, synctv.admin)
def handler(
    request: synctv.CreateRequest, caller: synctv.SyncTvCaller, svc: Services
) -> synctv.Reply:
    alias = str(request.offer_id)
    catalog.generate_codes(
        svc, caller.tenant_id, "synctv", alias, request.count, request.length, caller.actor
    )
    return synctv.created()
