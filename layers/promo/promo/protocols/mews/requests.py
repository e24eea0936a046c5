"""Mews Connector API requests: voucherCodes/getAll, add and delete (JSON).

Contract and choices where it is silent: docs/protocols/mews.md.
"""

import calendar
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from promo.codecs.fields import CodeValue, WireText
from promo.domain import clock
from promo.domain.models import Window

MAX_ITEMS = 1000


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
    Client: WireText = Field(min_length=1, max_length=255)


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
    # The value policy (promo.domain.values): refused, never repaired; canonical (NFC) here.
    Value: CodeValue
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
