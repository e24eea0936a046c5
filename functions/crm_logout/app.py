"""CRM.COM ``POST /crmapi/rest/v2/authentication/token/release``: the token stops working."""

from promo.auth import crm as crm_auth
from promo.codecs import crm
from promo.services import Services


@crm.public_endpoint(crm.ReleaseRequest)
def handler(request: crm.ReleaseRequest, svc: Services) -> None:
    crm_auth.release(svc.credentials, request.token)
