"""Mews ``POST /api/connector/v1/voucherCodes/add``: all codes are added, or none."""

from typing import Any

from promo import services
from promo.protocols import mews


@mews.endpoint(mews.AddRequest)
def handler(
    request: mews.AddRequest, caller: mews.MewsCaller, svc: services.Services
) -> dict[str, Any]:
    entries = [
        services.CodeToAdd(str(p.VoucherId), p.Value, p.validity())
        for p in request.VoucherCodeParameters
    ]
    tenant_id = caller.tenant_for_write(request.EnterpriseId)
    added = services.add_codes(svc, tenant_id, "mews", entries, caller.actor)
    return {"VoucherCodes": mews.voucher_codes(svc, added)}
