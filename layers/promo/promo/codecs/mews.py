"""Mews Connector API: voucherCodes/getAll, add and delete (JSON).

Contract: shared/specs/mews-voucher-codes.txt; choices where it is silent: docs/protocols/mews.md.
"""

import calendar
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from promo.auth.mews import MewsCaller, authenticate
from promo.bootstrap import services
from promo.codecs import json as json_codec
from promo.codecs.errors import ErrorTable
from promo.domain import clock
from promo.domain.errors import (
    AuthenticationFailed,
    Forbidden,
    InvalidRequest,
    PromoError,
    StoreUnavailable,
)
from promo.domain.models import Code, Window
from promo.endpoint import LambdaHandler, lambda_endpoint
from promo.http import HttpRequest, HttpResponse
from promo.observability import logger
from promo.services import CodePage, Services

MAX_ITEMS = 1000
_JSON = "application/json; charset=utf-8"


def _utc(value: Any, info: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date and time in UTC")
    return clock.parse_iso8601(value, info.field_name or "")


UtcTimestamp = Annotated[datetime, BeforeValidator(_utc)]


class _Model(BaseModel):
    # Mews clients send properties this API does not use (LanguageCode, CultureCode...): ignored.
    # Built by the endpoint that validates with it (json_codec.built), not by every function.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class Envelope(_Model):
    ClientToken: str
    AccessToken: str
    Client: str = Field(min_length=1, max_length=255)


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


class TimeInterval(_Model):
    StartUtc: UtcTimestamp
    EndUtc: UtcTimestamp

    @model_validator(mode="after")
    def _at_most_three_months(self) -> "TimeInterval":
        if self.EndUtc < self.StartUtc:
            raise ValueError("EndUtc must not be before StartUtc")
        if self.EndUtc > _add_months(self.StartUtc, 3):
            raise ValueError("the interval must not be longer than 3 months")
        return self

    def bounds(self) -> tuple[datetime, datetime]:
        return self.StartUtc, self.EndUtc


class Paging(_Model):
    Count: int = Field(ge=1, le=MAX_ITEMS, strict=True)
    Cursor: UUID | None = None


class GetAllRequest(Envelope):
    EnterpriseIds: list[UUID] | None = Field(default=None, max_length=MAX_ITEMS)
    VoucherCodeIds: list[UUID] | None = Field(default=None, max_length=MAX_ITEMS)
    VoucherIds: list[UUID] | None = Field(default=None, max_length=MAX_ITEMS)
    UpdatedUtc: TimeInterval | None = None
    Limitation: Paging


class NewVoucherCode(_Model):
    VoucherId: UUID
    Value: str = Field(min_length=1, max_length=128)
    ValidityStartUtc: UtcTimestamp | None = None
    ValidityEndUtc: UtcTimestamp | None = None

    @model_validator(mode="after")
    def _start_not_after_end(self) -> "NewVoucherCode":
        start, end = self.ValidityStartUtc, self.ValidityEndUtc
        if start is not None and end is not None and start > end:
            raise ValueError("ValidityStartUtc must not be after ValidityEndUtc")
        return self

    def validity(self) -> Window:
        return Window(self.ValidityStartUtc, self.ValidityEndUtc)


class AddRequest(Envelope):
    EnterpriseId: UUID | None = None
    VoucherCodeParameters: list[NewVoucherCode] = Field(min_length=1, max_length=MAX_ITEMS)


class DeleteRequest(Envelope):
    EnterpriseId: UUID | None = None
    VoucherCodeIds: list[UUID] = Field(min_length=1, max_length=MAX_ITEMS)


# ---------------------------------------------------------------------- rendering


def voucher_code(code: Code, voucher_id: UUID) -> dict[str, Any]:
    def stamp(moment: datetime | None) -> str | None:
        return None if moment is None else clock.format_iso8601(moment)

    return {
        "Id": str(code.uuid),
        "VoucherId": str(voucher_id),
        "Value": code.value,
        "ValidityStartUtc": stamp(code.validity.start),
        "ValidityEndUtc": stamp(code.validity.end),
        "CreatedUtc": stamp(code.audit.created_at),
        "UpdatedUtc": stamp(code.audit.updated_at),
        "ActivityState": "Deleted" if code.is_deleted else "Active",
    }


def voucher_codes(svc: Services, codes: list[Code]) -> list[dict[str, Any]]:
    vouchers: dict[tuple[str, str], UUID | None] = {}
    for key in {(code.tenant_id, code.pool_id) for code in codes}:
        pool = svc.catalog.get_pool(*key)
        vouchers[key] = pool.aliases.mews_voucher_id if pool is not None else None
    return [
        voucher_code(code, voucher_id)
        for code in codes
        # a pool Mews cannot name is not part of Mews' view
        if (voucher_id := vouchers[(code.tenant_id, code.pool_id)]) is not None
    ]


def page(svc: Services, result: CodePage) -> dict[str, Any]:
    """getAll's answer: ``Cursor`` is the Id of the last (oldest) code, when more may follow."""
    cursor = str(result.codes[-1].uuid) if result.more else None
    return {"VoucherCodes": voucher_codes(svc, result.codes), "Cursor": cursor}


# ---------------------------------------------------------------------- errors

ERRORS: ErrorTable[int] = ErrorTable(
    {
        AuthenticationFailed: 401,
        Forbidden: 403,
        StoreUnavailable: 500,
        PromoError: 400,  # invalid or malformed requests, unknown ids, duplicate values
    },
    fallback=500,
)


def error(status: int, message: str, request: HttpRequest) -> HttpResponse:
    body = {"Message": message, "RequestId": request.request_id or None}
    return HttpResponse(status, json_codec.dumps(body), _JSON, headers=_request_id(request))


def _request_id(request: HttpRequest) -> dict[str, str]:
    return {"request-id": request.request_id} if request.request_id else {}


def _unexpected(request: HttpRequest) -> HttpResponse:
    return error(500, "An unexpected error occurred; the request may be retried.", request)


def endpoint[M: Envelope](
    model: type[M],
) -> Callable[[Callable[[M, MewsCaller, Services], dict[str, Any]]], LambdaHandler]:
    """Decorate ``operation(request, caller, services) -> body`` into a Lambda handler:
    parse, authenticate, validate, call, render; every refusal in Mews' error shape."""
    json_codec.built(model)

    def decorate(operation: Callable[[M, MewsCaller, Services], dict[str, Any]]) -> LambdaHandler:
        def respond(request: HttpRequest) -> HttpResponse:
            try:
                if request.media_type("content-type") not in ("application/json", ""):
                    raise InvalidRequest("Content-Type must be application/json.")
                svc = services()
                document = json_codec.loads(request.body)
                caller = authenticate(svc.credentials, document)
                body = operation(json_codec.validate(document, model), caller, svc)
            except PromoError as refused:
                status = ERRORS.answer(refused)
                if status >= 500:
                    logger.warning("Store unavailable", extra={"reason": refused.message})
                    return _unexpected(request)
                return error(status, refused.message, request)
            return HttpResponse(200, json_codec.dumps(body), _JSON, headers=_request_id(request))

        return lambda_endpoint(respond, _unexpected)

    return decorate


__all__ = [
    "AddRequest",
    "DeleteRequest",
    "GetAllRequest",
    "MewsCaller",
    "endpoint",
    "page",
    "voucher_codes",
]
