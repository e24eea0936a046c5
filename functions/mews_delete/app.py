"""Mews ``POST /api/connector/v1/voucherCodes/delete``: soft delete, all ids or none."""

from typing import Any

from promo.protocols import mews
from promo.services import Services, catalog


@mews.endpoint(mews.DeleteRequest)
def handler(request: mews.DeleteRequest, caller: mews.MewsCaller, svc: Services) -> dict[str, Any]:
    tenant_id = caller.tenant_for_write(request.EnterpriseId)
    catalog.delete_codes(svc, tenant_id, request.VoucherCodeIds, caller.actor)
    return {}
