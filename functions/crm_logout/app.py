"""CRM.COM ``POST /crmapi/rest/v2/authentication/token/release``: the token stops working."""

from promo.protocols import crm
from promo.services import Services


@crm.public_endpoint(crm.ReleaseRequest)
def handler(request: crm.ReleaseRequest, svc: Services) -> None:
    crm.release(svc.credentials, request.token)
