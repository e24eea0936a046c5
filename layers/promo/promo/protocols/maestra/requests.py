"""Maestra (Mindbox) v3 requests: the operation body, the page's mandatory / disallowed field
rules, and the call they make once authenticated.

Contract and choices where it is silent: docs/protocols/maestra.md. Bodies come as XML
(``<operation>``) or JSON with the same names.
"""

import hashlib
import json
from datetime import datetime, timedelta
from typing import Annotated, Any, NamedTuple

from lxml import etree
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from promo.codecs import json as json_codec
from promo.codecs import xml as xml_codec
from promo.codecs.fields import CodeValue, WireText
from promo.domain import clock
from promo.domain.errors import MalformedRequest, PromoError
from promo.domain.models import Issuance, PointOfContact, Receipt, Recipient, StepKind, Window
from promo.http import HttpRequest
from promo.protocols.maestra.auth import MaestraCaller, authenticate
from promo.services import Services
from promo.services.issuing import Step

XML_TYPES = {"application/xml", "text/xml"}


def _maestra_time(value: Any, info: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected YYYY-MM-DD hh:mm:ss.fff")
    return clock.parse_maestra(value, info.field_name or "")


MaestraTime = Annotated[datetime, BeforeValidator(_maestra_time)]


class _Model(BaseModel):
    # The parts are only ever validated inside OperationBody, whose build includes them.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class CodeIds(_Model):
    # The value policy (promo.domain.values): refused, never repaired; canonical (NFC) here,
    # so every lookup by value uses that form.
    value: CodeValue | None = None


class PoolIds(_Model):
    externalId: WireText = Field(min_length=1, max_length=256)  # noqa: N815 - Mindbox's name


class PoolRef(_Model):
    ids: PoolIds


class PromoCodeIn(_Model):
    ids: CodeIds | None = None
    pool: PoolRef | None = None
    availableFromDateTimeUtc: MaestraTime | None = None  # noqa: N815
    availableTillDateTimeUtc: MaestraTime | None = None  # noqa: N815


class CustomerIds(_Model):
    webSiteUserId: WireText | None = Field(default=None, min_length=1, max_length=256)  # noqa: N815


class CustomerIn(_Model):
    ids: CustomerIds


class OperationBody(_Model):
    # What every Maestra function validates (requests and queued messages): built at import.
    model_config = ConfigDict(defer_build=False)

    customer: CustomerIn | None = None
    promoCode: PromoCodeIn | None = None  # noqa: N815
    executionDateTimeUtc: MaestraTime | None = None  # noqa: N815
    pointOfContact: WireText | None = Field(default=None, max_length=256)  # noqa: N815

    @property
    def value(self) -> str | None:
        code = self.promoCode
        return code.ids.value if code and code.ids else None

    @property
    def pool_alias(self) -> str | None:
        code = self.promoCode
        return code.pool.ids.externalId if code and code.pool else None


class ValidationMessage(NamedTuple):
    """One entry of a ValidationError answer: what is wrong, and where in the body."""

    message: str
    location: str


class BodyInvalid(PromoError):
    """A ValidationError answer: the request is well-formed but breaks the operation's rules."""

    def __init__(self, messages: list[ValidationMessage]) -> None:
        super().__init__("; ".join(f"{m.location}: {m.message}" for m in messages))
        self.messages = messages


def _element_data(element: etree._Element) -> Any:
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        # The text exactly as sent, as JSON gives it: never stripped, so that a value with
        # whitespace at an end is refused in both formats rather than read as another code.
        return element.text or None
    data: dict[str, Any] = {}
    for child in children:
        tag = etree.QName(child).localname
        value = _element_data(child)
        if tag in data:
            data[tag] = [*data[tag], value] if isinstance(data[tag], list) else [data[tag], value]
        else:
            data[tag] = value
    return data


def parse_body(request: HttpRequest) -> OperationBody:
    """The ``<operation>`` (XML) or its JSON form, validated; wrong media types are refused."""
    media = request.media_type("content-type")
    if media in XML_TYPES:
        root = xml_codec.parse(request.body)
        if etree.QName(root).localname != "operation":
            raise MalformedRequest("The XML root element must be <operation>.")
        document = _element_data(root)
        document = document if isinstance(document, dict) else {}
    elif media == "application/json":
        document = json_codec.loads(request.body)
        if not isinstance(document, dict):
            raise MalformedRequest("The JSON body must be an object.")
    else:
        raise MalformedRequest("Content-Type must be application/xml or application/json.")
    try:
        return OperationBody.model_validate(document)
    except ValidationError as invalid:
        raise BodyInvalid(
            [
                ValidationMessage(error["msg"], "/" + "/".join(str(p) for p in error["loc"]))
                for error in invalid.errors(include_url=False, include_input=False)
            ]
        ) from None


# The page's table: which of promoCode/ids and promoCode/pool each kind of step requires.
_MANDATORY, _DISALLOWED = "mandatory", "disallowed"


def _step_rules(kind: StepKind, pool_fixed: bool) -> dict[str, str]:
    """Ours for the kinds the page does not have: a use is named by its code's value, and a
    reservation (reserve, release) by the customer it is held for."""
    pool_rule = _DISALLOWED if pool_fixed else _MANDATORY
    by_value = {"/promoCode/ids": _MANDATORY, "/promoCode/pool": _DISALLOWED}
    if kind in (StepKind.RESERVE, StepKind.RELEASE):
        return {**by_value, _HOLDER: _MANDATORY}
    return {
        StepKind.BY_VALUE: by_value,
        StepKind.BY_VALUE_CREATE: {"/promoCode/ids": _MANDATORY, "/promoCode/pool": pool_rule},
        StepKind.FROM_POOL: {"/promoCode/ids": _DISALLOWED, "/promoCode/pool": pool_rule},
        StepKind.REDEEM: by_value,
        StepKind.ROLLBACK_REDEMPTION: by_value,
    }[kind]


_HOLDER = "/customer/ids/webSiteUserId"


def check_step(kind: StepKind, pool_fixed: bool, body: OperationBody) -> None:
    """Enforce the mandatory / disallowed table of the page; BodyInvalid names each field."""
    present = {
        "/promoCode/ids": body.value is not None,
        "/promoCode/pool": body.pool_alias is not None,
        _HOLDER: bool(body.customer and body.customer.ids.webSiteUserId),
    }
    problems = [
        ValidationMessage("Field is mandatory for this operation.", location)
        if rule == _MANDATORY
        else ValidationMessage("Field is not allowed for this operation.", location)
        for location, rule in _step_rules(kind, pool_fixed).items()
        if present[location] != (rule == _MANDATORY)
    ]
    if problems:
        raise BodyInvalid(problems)


# ---------------------------------------------------------------------- the call


class OperationCall(NamedTuple):
    """An authenticated Maestra operation with its validated body, performed now or queued."""

    caller: MaestraCaller
    operation: str
    body: OperationBody
    transaction_id: str | None
    # A digest of the body, kept with a receipt so that a retry with another body is told
    # apart. Computed only for a call with an idempotency key or one being queued: a call
    # without a key writes no receipt, and None stands for "not computed".
    fingerprint: str | None
    received_at: datetime

    def step(self) -> Step:
        setting = self.caller.endpoint.operations[self.operation]
        check_step(setting.kind, setting.pool_alias is not None, self.body)
        code = self.body.promoCode
        customer = self.body.customer
        recipient = (
            Recipient("maestra.webSiteUserId", customer.ids.webSiteUserId)
            if customer and customer.ids.webSiteUserId
            else None
        )
        endpoint = PointOfContact(
            self.caller.endpoint.endpoint_id, self.caller.endpoint.endpoint_id
        )
        point_of_contact = (
            PointOfContact(self.body.pointOfContact) if self.body.pointOfContact else endpoint
        )
        receipt = (
            Receipt(
                f"maestra#{self.caller.endpoint.endpoint_id}#{self.operation}",
                self.transaction_id,
                self.fingerprint or body_fingerprint(self.body),
            )
            if self.transaction_id
            else None
        )
        return Step(
            kind=setting.kind,
            tenant_id=self.caller.endpoint.tenant_id,
            protocol="maestra",
            value=self.body.value,
            pool_alias=setting.pool_alias or self.body.pool_alias,
            validity=Window(
                code.availableFromDateTimeUtc if code else None,
                code.availableTillDateTimeUtc if code else None,
            ),
            issuance=Issuance(
                # A backdated request is judged, and recorded, at its execution time.
                at=self.body.executionDateTimeUtc or self.received_at,
                actor=self.caller.actor,
                recipient=recipient,
                point_of_contact=point_of_contact,
                receipt=receipt,
            ),
            backdated=self.body.executionDateTimeUtc is not None,
            hold_for=timedelta(minutes=setting.hold_minutes),
        )


def read_call(svc: Services, request: HttpRequest) -> OperationCall:
    """Authenticate, then parse: the endpoint, key and operation are checked before the body."""
    endpoint_id = request.query.get("endpointId") or request.query.get("endpoint")
    operation = request.query.get("operation")
    caller = authenticate(svc.credentials, endpoint_id, request.headers.get("authorization"))
    if not operation or operation not in caller.endpoint.operations:
        raise UnknownOperation(f"Operation {operation or ''} not found".strip())
    body = parse_body(request)
    received_at = clock.now()
    check_execution_time(body, received_at, caller, svc.settings.maestra_clock_skew_seconds)
    transaction_id = request.query.get("transactionId") or None
    return OperationCall(
        caller=caller,
        operation=operation,
        body=body,
        transaction_id=transaction_id,
        fingerprint=body_fingerprint(body) if transaction_id else None,
        received_at=received_at,
    )


def check_execution_time(
    body: OperationBody, received_at: datetime, caller: MaestraCaller, skew_seconds: int
) -> None:
    """A request may date itself back by its endpoint's look-back and ahead by the clock skew,
    both counted from when it was received (and the skew widens the look-back too, for a
    client whose clock is behind ours); anything else is a ValidationError at the field."""
    at = body.executionDateTimeUtc
    if at is None:
        return
    skew = timedelta(seconds=skew_seconds)
    days = caller.endpoint.look_back_days
    if not received_at - timedelta(days=days) - skew <= at <= received_at + skew:
        raise BodyInvalid(
            [
                ValidationMessage(
                    f"executionDateTimeUtc must lie within the last {days} days and at most "
                    f"{skew_seconds} seconds ahead of the server's time.",
                    "/executionDateTimeUtc",
                )
            ]
        )


def body_fingerprint(body: OperationBody) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class UnknownOperation(PromoError):
    pass
