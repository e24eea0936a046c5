"""Mews Connector API: voucherCodes/getAll, add and delete (JSON).

Contract and choices where it is silent: docs/protocols/mews.md. Handlers read
``from promo.protocols import mews`` and use the names below.
"""

from promo.protocols.mews.answers import page, voucher_codes
from promo.protocols.mews.auth import MewsCaller
from promo.protocols.mews.endpoint import endpoint
from promo.protocols.mews.requests import AddRequest, DeleteRequest, GetAllRequest

__all__ = [
    "AddRequest",
    "DeleteRequest",
    "GetAllRequest",
    "MewsCaller",
    "endpoint",
    "page",
    "voucher_codes",
]
