"""Mews ``POST /api/connector/v1/voucherCodes/getAll``: voucher codes, newest first, paged."""

from typing import Any

from promo.protocols import mews
from promo.services import Services, listing


@mews.endpoint(mews.GetAllRequest)
def handler(request: mews.GetAllRequest, caller: mews.MewsCaller, svc: Services) -> dict[str, Any]:
    query = listing.CodeQuery(
        tenant_ids=caller.scope(request.EnterpriseIds),
        protocol="mews",
        pool_aliases=None if request.VoucherIds is None else [str(v) for v in request.VoucherIds],
        code_ids=request.VoucherCodeIds,
        updated=request.UpdatedUtc.bounds() if request.UpdatedUtc else None,
        limit=request.Limitation.Count,
        after=request.Limitation.Cursor,
    )
    return mews.page(listing.list_codes(svc, query))
