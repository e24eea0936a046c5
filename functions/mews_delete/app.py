"""Mews ``POST /api/connector/v1/voucherCodes/delete``: soft delete, all ids or none."""

from typing import Any

from promo import services
from promo.protocols import mews


@mews.endpoint(mews.DeleteRequest)
def handler(
    request: mews.DeleteRequest, caller: mews.MewsCaller, svc: services.Services
) -> dict[str, Any]:
    tenant_id = caller.tenant_for_write(request.EnterpriseId)
    services.delete_codes(svc, tenant_id, request.VoucherCodeIds, caller.actor)
    return {}
