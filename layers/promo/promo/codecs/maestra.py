"""Maestra (Mindbox) v3 operations: issue a promo code by value or from a pool, and redeem.

Contract: shared/specs/maestra-issue-promo-codes.txt; choices where it is silent:
docs/protocols/maestra.md. Bodies come as XML (``<operation>`` -> ``<result>``) or JSON with the
same names; the answer uses the format the client asked for (``Accept``, else ``Content-Type``).
"""

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, NamedTuple

from lxml import etree
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from promo.auth.maestra import MaestraCaller, authenticate
from promo.bootstrap import services
from promo.codecs import json as json_codec
from promo.codecs import xml as xml_codec
from promo.codecs.errors import ErrorTable
from promo.domain import clock
from promo.domain.errors import (
    AuthenticationFailed,
    CodeNotFound,
    Forbidden,
    IdempotencyConflict,
    InvalidRequest,
    MalformedRequest,
    NoCodeAvailable,
    NotAvailableForIssue,
    OutsideIssueWindow,
    PoolNotFound,
    PromoError,
    StoreUnavailable,
    TransitionRefused,
)
from promo.domain.models import Issuance, PointOfContact, Pool, Receipt, Recipient, StepKind, Window
from promo.endpoint import LambdaHandler, lambda_endpoint
from promo.http import HttpRequest, HttpResponse
from promo.observability import logger
from promo.services import Services, Step, StepOutcome

XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"
_XML_TYPES = {"application/xml", "text/xml"}


# ---------------------------------------------------------------------- request body


def _maestra_time(value: Any, info: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected YYYY-MM-DD hh:mm:ss.fff")
    return clock.parse_maestra(value, info.field_name or "")


MaestraTime = Annotated[datetime, BeforeValidator(_maestra_time)]


class _Model(BaseModel):
    # The parts are only ever validated inside OperationBody, whose build includes them.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class CodeIds(_Model):
    value: str | None = Field(default=None, min_length=1, max_length=128)


class PoolIds(_Model):
    externalId: str = Field(min_length=1, max_length=256)  # noqa: N815 - Mindbox's name


class PoolRef(_Model):
    ids: PoolIds


class PromoCodeIn(_Model):
    ids: CodeIds | None = None
    pool: PoolRef | None = None
    availableFromDateTimeUtc: MaestraTime | None = None  # noqa: N815
    availableTillDateTimeUtc: MaestraTime | None = None  # noqa: N815


class CustomerIds(_Model):
    webSiteUserId: str | None = Field(default=None, min_length=1, max_length=256)  # noqa: N815


class CustomerIn(_Model):
    ids: CustomerIds


class OperationBody(_Model):
    # What every Maestra function validates (requests and queued messages): built at import.
    model_config = ConfigDict(defer_build=False)

    customer: CustomerIn | None = None
    promoCode: PromoCodeIn | None = None  # noqa: N815
    executionDateTimeUtc: MaestraTime | None = None  # noqa: N815
    pointOfContact: str | None = Field(default=None, max_length=256)  # noqa: N815

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
        return (element.text or "").strip() or None
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
    if media in _XML_TYPES:
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
    pool_rule = _DISALLOWED if pool_fixed else _MANDATORY
    return {
        StepKind.BY_VALUE: {"/promoCode/ids": _MANDATORY, "/promoCode/pool": _DISALLOWED},
        StepKind.BY_VALUE_CREATE: {"/promoCode/ids": _MANDATORY, "/promoCode/pool": pool_rule},
        StepKind.FROM_POOL: {"/promoCode/ids": _DISALLOWED, "/promoCode/pool": pool_rule},
        StepKind.REDEEM: {"/promoCode/ids": _MANDATORY, "/promoCode/pool": _DISALLOWED},
    }[kind]


def check_step(kind: StepKind, pool_fixed: bool, body: OperationBody) -> None:
    """Enforce the mandatory / disallowed table of the page; BodyInvalid names each field."""
    present = {
        "/promoCode/ids": body.value is not None,
        "/promoCode/pool": body.pool_alias is not None,
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
        )


def read_call(svc: Services, request: HttpRequest) -> OperationCall:
    """Authenticate, then parse: the endpoint, key and operation are checked before the body."""
    endpoint_id = request.query.get("endpointId") or request.query.get("endpoint")
    operation = request.query.get("operation")
    caller = authenticate(svc.credentials, endpoint_id, request.headers.get("authorization"))
    if not operation or operation not in caller.endpoint.operations:
        raise UnknownOperation(f"Operation {operation or ''} not found".strip())
    body = parse_body(request)
    transaction_id = request.query.get("transactionId") or None
    return OperationCall(
        caller=caller,
        operation=operation,
        body=body,
        transaction_id=transaction_id,
        fingerprint=body_fingerprint(body) if transaction_id else None,
        received_at=clock.now(),
    )


def body_fingerprint(body: OperationBody) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class UnknownOperation(PromoError):
    pass


# ---------------------------------------------------------------------- the async queue


def to_message(call: OperationCall, key: str) -> dict[str, Any]:
    """What the async worker needs to perform the call later: never the secret key."""
    body = call.body.model_dump(mode="python", exclude_none=True)
    return {
        "endpoint": call.caller.endpoint.endpoint_id,
        "operation": call.operation,
        "key": key,
        "fingerprint": call.fingerprint or body_fingerprint(call.body),
        "received_at": clock.to_stored(call.received_at),
        "body": _maestra_times(body),
    }


def _maestra_times(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _maestra_times(v) for k, v in data.items()}
    return clock.format_maestra(data) if isinstance(data, datetime) else data


def from_message(svc: Services, message: dict[str, Any]) -> OperationCall:
    """The call a queued message describes; its endpoint was authenticated when it was sent."""
    endpoint = svc.credentials.maestra_endpoint(message["endpoint"])
    if endpoint is None or message["operation"] not in endpoint.operations:
        raise UnknownOperation(f"Operation {message['operation']} not found")
    return OperationCall(
        caller=MaestraCaller(endpoint),
        operation=message["operation"],
        body=OperationBody.model_validate(message["body"]),
        transaction_id=message["key"],
        fingerprint=message["fingerprint"],
        received_at=clock.from_stored(message["received_at"]),
    )


# ---------------------------------------------------------------------- rendering


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else clock.format_maestra(moment)


def _contact(contact: PointOfContact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {"ids": {"externalId": contact.external_id}, "name": contact.name}


def _pool(pool: Pool | None, alias: str | None) -> dict[str, Any] | None:
    if pool is None:
        return None if alias is None else {"ids": {"externalId": alias}}
    return {
        "ids": {"externalId": pool.aliases.maestra_external_id or alias},
        "name": pool.name,
        "description": pool.description,
    }


ISSUE_STATUSES: ErrorTable[str] = ErrorTable(
    {
        CodeNotFound: "PromoCodeNotFound",
        PoolNotFound: "PromoCodePoolNotFound",
        NoCodeAvailable: "NoAvailablePromoCodesInPool",
        NotAvailableForIssue: "NotAvailableForIssue",
        OutsideIssueWindow: "NotInIssueDateTimeRange",
        TransitionRefused: "NotAvailableForIssue",
    },
    fallback="NotAvailableForIssue",
)


def promo_code(outcome: StepOutcome, step: Step, svc: Services) -> dict[str, Any]:
    """The ``<promoCode>`` block, every field of the page in its order; absent values omitted."""
    code = outcome.code
    pool = outcome.pool
    if pool is None and code is not None:
        pool = svc.catalog.get_pool(code.tenant_id, code.pool_id)
    status = "Issued" if outcome.refusal is None else ISSUE_STATUSES.answer(outcome.refusal)
    block: dict[str, Any] = {"issueStatus": status} if step.kind is not StepKind.REDEEM else {}
    value = code.value if code else step.value
    if value is not None:
        block["ids"] = {"mindboxId": code.number if code else None, "value": value}
    block["pool"] = _pool(pool, step.pool_alias)
    if code is not None:
        block |= {
            "availableFromDateTimeUtc": _stamp(code.validity.start),
            "availableTillDateTimeUtc": _stamp(code.validity.end),
            "isUsed": code.used_at is not None,
            "usedPointOfContact": _contact(code.used_point_of_contact),
            "usedDateTimeUtc": _stamp(code.used_at),
            "issuedPointOfContact": _contact(code.issued_point_of_contact),
            "issuedDateTimeUtc": _stamp(code.issued_at),
            "blockedDateTimeUtc": _stamp(code.blocked_at),
        }
    pruned: dict[str, Any] = _prune(block)
    return pruned


def _prune(data: Any) -> Any:
    if isinstance(data, dict):
        pruned = {k: _prune(v) for k, v in data.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != {}}
    return data


def _to_xml(parent: etree._Element, data: Any) -> None:
    for name, value in data.items():
        if isinstance(value, list):
            holder = etree.SubElement(parent, name)
            for entry in value:
                _to_xml(etree.SubElement(holder, name[:-1]), entry)  # plural -> singular
        elif isinstance(value, dict):
            _to_xml(etree.SubElement(parent, name), value)
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            xml_codec.child(parent, name, text)


def answer(result: dict[str, Any], status: int, as_xml: bool) -> HttpResponse:
    if as_xml:
        root = etree.Element("result")
        _to_xml(root, result)
        return HttpResponse(status, xml_codec.render(root), XML)
    return HttpResponse(status, json_codec.dumps(result), JSON)


def wants_xml(request: HttpRequest) -> bool:
    accept = request.headers.get("accept", "").lower()
    if "json" in accept and "xml" not in accept:
        return False
    if "xml" in accept and "json" not in accept:
        return True
    return request.media_type("content-type") in _XML_TYPES


# ---------------------------------------------------------------------- errors

# Request-level refusals: (HTTP status, request status). Business outcomes never come here.
ERRORS: ErrorTable[tuple[int, str]] = ErrorTable(
    {
        AuthenticationFailed: (401, "ProtocolError"),
        Forbidden: (403, "ProtocolError"),
        UnknownOperation: (400, "ProtocolError"),
        MalformedRequest: (400, "ProtocolError"),
        IdempotencyConflict: (400, "ProtocolError"),
        BodyInvalid: (200, "ValidationError"),
        InvalidRequest: (200, "ValidationError"),
        StoreUnavailable: (500, "InternalServerError"),
    },
    fallback=(500, "InternalServerError"),
)


def refusal(error: PromoError, as_xml: bool) -> HttpResponse:
    status, kind = ERRORS.answer(error)
    if kind == "ValidationError":
        messages = getattr(error, "messages", None) or [
            ValidationMessage(error.message, "/" + (getattr(error, "location", None) or ""))
        ]
        body: dict[str, Any] = {
            "status": kind,
            "validationMessages": [
                {"message": m.message, "location": m.location} for m in messages
            ],
        }
        return answer(body, 200, as_xml)
    message = error.message if status < 500 else "The server could not complete the request."
    body = {
        "status": kind,
        "errorMessage": message,
        "errorId": str(uuid.uuid4()),
        "httpStatusCode": status,
    }
    return answer(body, status, as_xml)


def endpoint(
    operation: Callable[[OperationCall, Services], dict[str, Any]],
) -> LambdaHandler:
    """Decorate ``operation(call, services) -> result`` into a Lambda handler answering every
    outcome in Mindbox's shapes and in the format the client asked for."""

    def respond(request: HttpRequest) -> HttpResponse:
        as_xml = wants_xml(request)
        try:
            svc = services()
            result = operation(read_call(svc, request), svc)
        except PromoError as refused:
            if isinstance(refused, StoreUnavailable):
                logger.warning("Store unavailable", extra={"reason": refused.message})
            return refusal(refused, as_xml)
        return answer(result, 200, as_xml)

    def unexpected(request: HttpRequest) -> HttpResponse:
        return refusal(StoreUnavailable("unexpected"), wants_xml(request))

    return lambda_endpoint(respond, unexpected)


def success(outcome: StepOutcome, step: Step, svc: Services) -> dict[str, Any]:
    """The answer to a performed step. Issue outcomes travel in ``issueStatus``; a redeem that
    could not happen is the customer's error (ValidationError), as the page has no status."""
    if step.kind is StepKind.REDEEM and outcome.refusal is not None:
        return {
            "status": "ValidationError",
            "validationMessages": [
                {
                    "message": _REDEEM_REFUSALS.answer(outcome.refusal),
                    "location": "/promoCode/ids/value",
                }
            ],
        }
    return {"status": "Success", "promoCode": promo_code(outcome, step, svc)}


_REDEEM_REFUSALS: ErrorTable[str] = ErrorTable(
    {
        CodeNotFound: "Promo code not found.",
        OutsideIssueWindow: "Promo code is outside its validity period.",
    },
    fallback="Promo code cannot be redeemed: it is used, blocked or deleted.",
)
