"""CRM.COM Web API: authentication/token, authentication/token/release and
promotion_campaigns/request_promo_code (JSON, under /crmapi/rest/v2/).

Contract and choices where it is silent: docs/protocols/crm.md. Handlers read
``from promo.protocols import crm`` and use the names below.
"""

from promo.protocols.crm.answers import promo_code, select
from promo.protocols.crm.auth import CrmCaller, login, release
from promo.protocols.crm.endpoint import endpoint, public_endpoint
from promo.protocols.crm.requests import (
    ALIAS_PROTOCOLS,
    LoginRequest,
    ReleaseRequest,
    RequestPromoCode,
)

__all__ = [
    "ALIAS_PROTOCOLS",
    "CrmCaller",
    "LoginRequest",
    "ReleaseRequest",
    "RequestPromoCode",
    "endpoint",
    "login",
    "promo_code",
    "public_endpoint",
    "release",
    "select",
]
