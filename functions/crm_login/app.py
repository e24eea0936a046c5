"""CRM.COM ``POST /crmapi/rest/v2/authentication/token``: a token for a user of an organisation."""

from datetime import timedelta
from typing import Any

from promo.protocols import crm
from promo.services import Services


@crm.public_endpoint(crm.LoginRequest)
def handler(request: crm.LoginRequest, svc: Services) -> dict[str, Any]:
    lifetime = timedelta(seconds=svc.settings.crm_token_seconds)
    token = crm.login(
        svc.credentials, request.organisation, request.username, request.password, lifetime
    )
    return {"token": token}
