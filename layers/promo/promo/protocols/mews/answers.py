"""Mews' answers: voucher codes as the Connector API shows them, and the error body; every answer
echoes the request's id."""

from datetime import datetime
from typing import Any
from uuid import UUID

from promo.codecs import json as json_codec
from promo.domain import clock
from promo.domain.models import Code
from promo.domain.values import render_safe
from promo.http import HttpRequest, HttpResponse
from promo.services.listing import CodePage

_JSON = "application/json; charset=utf-8"


def voucher_code(code: Code, voucher_id: UUID) -> dict[str, Any]:
    def stamp(moment: datetime | None) -> str | None:
        return None if moment is None else clock.format_iso8601(moment)

    return {
        "Id": str(code.uuid),
        "VoucherId": str(voucher_id),
        "Value": render_safe(code.value),  # a value stored before the policy still renders
        "ValidityStartUtc": stamp(code.validity.start),
        "ValidityEndUtc": stamp(code.validity.end),
        "CreatedUtc": stamp(code.audit.created_at),
        "UpdatedUtc": stamp(code.audit.updated_at),
        "ActivityState": "Deleted" if code.is_deleted else "Active",  # deprecated by Mews
        "IsActive": not code.is_deleted,  # ActivityState's successor (Mews, 2024)
    }


def voucher_codes(page: CodePage) -> list[dict[str, Any]]:
    vouchers: dict[tuple[str, str], UUID | None] = {
        key: pool.aliases.mews_voucher_id for key, pool in page.pools.items()
    }
    return [
        voucher_code(code, voucher_id)
        for code in page.codes
        # a pool Mews cannot name is not part of Mews' view
        if (voucher_id := vouchers.get((code.tenant_id, code.pool_id))) is not None
    ]


def page(result: CodePage) -> dict[str, Any]:
    """getAll's answer: ``Cursor`` is the Id of the last (oldest) code returned, and null only
    when none is returned, as Mews' pagination guidelines define it."""
    cursor = str(result.codes[-1].uuid) if result.codes else None
    return {"VoucherCodes": voucher_codes(result), "Cursor": cursor}


def ok(body: dict[str, Any], request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, json_codec.dumps(body), _JSON, headers=_request_id(request))


def error(status: int, message: str, request: HttpRequest) -> HttpResponse:
    body = {"Message": message, "RequestId": request.request_id or None}
    return HttpResponse(status, json_codec.dumps(body), _JSON, headers=_request_id(request))


def _request_id(request: HttpRequest) -> dict[str, str]:
    return {"request-id": request.request_id} if request.request_id else {}


def too_many_requests(retry_after: int, request: HttpRequest) -> HttpResponse:
    """429 with ``Retry-After``: the AccessToken made more requests than its window allows."""
    message = f"Too many requests for this access token; retry after {retry_after} seconds."
    answer = error(429, message, request)
    return answer._replace(headers={**answer.headers, "retry-after": str(retry_after)})


def unexpected(request: HttpRequest) -> HttpResponse:
    return error(500, "An unexpected error occurred; the request may be retried.", request)
