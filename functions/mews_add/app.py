"""Mews ``POST /api/connector/v1/voucherCodes/add``: all codes are added, or none."""

from typing import Any

from promo.protocols import mews
from promo.services import Services, catalog


@mews.endpoint(mews.AddRequest)
def handler(request: mews.AddRequest, caller: mews.MewsCaller, svc: Services) -> dict[str, Any]:
    entries = [
        catalog.CodeToAdd(str(p.VoucherId), p.Value, p.validity())
        for p in request.VoucherCodeParameters
    ]
    tenant_id = caller.tenant_for_write(request.EnterpriseId)
    added = catalog.add_codes(svc, tenant_id, "mews", entries, caller.actor)
    return {"VoucherCodes": mews.voucher_codes(added)}
