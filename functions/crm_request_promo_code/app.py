"""CRM.COM ``POST /crmapi/rest/v2/promotion_campaigns/request_promo_code``: one code of a
campaign, issued exactly once to the named recipient."""

from typing import Any

from promo.domain import clock
from promo.protocols import crm
from promo.services import Services, issuing


@crm.endpoint(crm.RequestPromoCode)
def handler(request: crm.RequestPromoCode, caller: crm.CrmCaller, svc: Services) -> dict[str, Any]:
    field, value = request.promotion_campaign_identifier.named()
    pool, code = issuing.request_campaign_code(
        svc,
        caller.tenant_id,
        crm.ALIAS_PROTOCOLS[field],
        value,
        clock.now(),
        caller.actor,
        request.recipient(),
        caller.unit,
    )
    return crm.promo_code(code, pool, caller, request.fields_set)
