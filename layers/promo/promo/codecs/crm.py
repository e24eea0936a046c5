"""CRM.COM Web API: authentication/token, authentication/token/release and
promotion_campaigns/request_promo_code (JSON, under /crmapi/rest/v2/).

Contract: shared/specs/crm-request-promo-code.txt; choices where it is silent:
docs/protocols/crm.md.
Every answer is ``{"data": …, "status": {"code", "description", "message"}}``; refusals are HTTP 200
with a non-OK ``status.code`` (clients key off it), server faults 5xx in the same envelope.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, ClassVar, NamedTuple

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from promo.auth.crm import CrmCaller, authenticate
from promo.bootstrap import services
from promo.codecs import json as json_codec
from promo.codecs.errors import ErrorTable
from promo.domain import clock
from promo.domain.errors import (
    AuthenticationFailed,
    InvalidRequest,
    MalformedRequest,
    NoCodeAvailable,
    OutsideIssueWindow,
    PoolClosed,
    PoolNotFound,
    PromoError,
    StoreUnavailable,
)
from promo.domain.models import Code, CodeState, PointOfContact, Pool, Recipient
from promo.endpoint import LambdaHandler, lambda_endpoint
from promo.http import HttpRequest, HttpResponse
from promo.observability import logger
from promo.services import Services

_JSON = "application/json; charset=utf-8"

Text = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]
Secret = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=1024)]


# ---------------------------------------------------------------------- requests


class _Model(BaseModel):
    # Top-level parameters this API does not use are ignored (CRM.COM clients may send more).
    # Built by the endpoint that validates with it (json_codec.built), not by every function.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class _Identifier(BaseModel):
    """A CRM.COM identifier object: exactly one of ``CHOICES`` names the record."""

    # Only ever validated inside a request model, whose build includes it.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    CHOICES: ClassVar[tuple[str, ...]]

    @model_validator(mode="after")
    def _exactly_one(self) -> "_Identifier":
        given = [name for name in self.CHOICES if getattr(self, name) is not None]
        choices = ", ".join(self.CHOICES)
        if not given:
            raise PydanticCustomError("identifier", f"It is mandatory to specify one of {choices}.")
        if len(given) > 1:
            raise PydanticCustomError(
                "identifier",
                f"Only one of {choices} is allowed to be specified; got {', '.join(given)}.",
            )
        return self

    def named(self) -> tuple[str, Any]:
        """The one field given and its value."""
        name = next(name for name in self.CHOICES if getattr(self, name) is not None)
        return name, getattr(self, name)


class CampaignIdentifier(_Identifier):
    CHOICES = ("id", "name", "alternative_code")
    id: Text | None = None
    name: Text | None = None
    alternative_code: Text | None = None


class AccessTokenIdentifier(_Identifier):
    CHOICES = ("authentication_code", "identifier", "one_time_password")
    authentication_code: Text | None = None
    identifier: Text | None = None
    pass_code: Secret | None = None
    one_time_password: Annotated[int, Field(ge=0, strict=True)] | None = None

    @model_validator(mode="after")
    def _pass_code_with_identifier(self) -> "AccessTokenIdentifier":
        if self.identifier is not None and self.pass_code is None:
            raise PydanticCustomError(
                "pass_code", "pass_code is mandatory when identifier is specified."
            )
        if self.identifier is None and self.pass_code is not None:
            raise PydanticCustomError(
                "pass_code", "pass_code is applicable only when identifier is specified."
            )
        return self


class ContactInformationIdentifier(_Identifier):
    CHOICES = (
        "id",
        "id_number",
        "passport_number",
        "social_security_number",
        "vat_registration_number",
        "registration_number",
    )
    id: Text | None = None
    id_number: Text | None = None
    passport_number: Text | None = None
    social_security_number: Text | None = None
    vat_registration_number: Text | None = None
    registration_number: Text | None = None


class AccountsReceivableIdentifier(_Identifier):
    CHOICES = ("id", "number", "name", "access_token_identifier")
    id: Text | None = None
    number: Text | None = None
    name: Text | None = None
    access_token_identifier: AccessTokenIdentifier | None = None


class SubscriptionIdentifier(_Identifier):
    CHOICES = ("id", "number")
    id: Text | None = None
    number: Text | None = None


class RewardsParticipantIdentifier(_Identifier):
    CHOICES = ("id", "number", "access_token_identifier")
    id: Text | None = None
    number: Text | None = None
    access_token_identifier: AccessTokenIdentifier | None = None


RECIPIENTS = (
    "contact_information_identifier",
    "accounts_receivable_identifier",
    "subscription_identifier",
    "rewards_participant_identifier",
)


MAX_FIELDS_SET = 1000


def _fields_set(value: Any) -> Any:
    """``"a, b,c.d"`` (CRM.COM's comma-separated list; a JSON array is accepted too) → names."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise PydanticCustomError("fields_set", "fields_set must be a comma-separated list.")
    if len(value) > MAX_FIELDS_SET:
        # An answer has a few dozen fields: a longer list is not a client's, and would cost a
        # pass over the answer per name.
        raise PydanticCustomError(
            "fields_set", f"fields_set must not name more than {MAX_FIELDS_SET} fields."
        )
    names = tuple(name.strip() for name in value if name.strip())
    return names or None  # empty: every field, as if not specified


FieldsSet = Annotated[tuple[str, ...] | None, BeforeValidator(_fields_set)]


class LoginRequest(_Model):
    username: Text
    password: Secret
    organisation: Text
    # Accepted and not used: our users have one unit each (docs/protocols/crm.md).
    unit: Text | None = None


class ReleaseRequest(_Model):
    token: Any = None  # checked by promo.auth.crm.release, as on every other method


class RequestPromoCode(_Model):
    promo_code: Any = None
    promotion_campaign_identifier: CampaignIdentifier
    contact_information_identifier: ContactInformationIdentifier | None = None
    accounts_receivable_identifier: AccountsReceivableIdentifier | None = None
    subscription_identifier: SubscriptionIdentifier | None = None
    rewards_participant_identifier: RewardsParticipantIdentifier | None = None
    fields_set: FieldsSet = None

    @field_validator("promo_code")
    @classmethod
    def _no_promo_code(cls, value: Any) -> None:
        if value is not None:
            raise PydanticCustomError(
                "unsupported",
                "promo_code is not supported: specify a promotion_campaign_identifier.",
            )

    @model_validator(mode="after")
    def _exactly_one_recipient(self) -> "RequestPromoCode":
        given = [name for name in RECIPIENTS if getattr(self, name) is not None]
        if not given:
            raise PydanticCustomError(
                "recipient", f"It is mandatory to specify one of {', '.join(RECIPIENTS)}."
            )
        if len(given) > 1:
            raise PydanticCustomError(
                "recipient",
                "Only one of those parameters is allowed to be specified: "
                f"{', '.join(RECIPIENTS)}; got {', '.join(given)}.",
            )
        return self

    def recipient(self) -> Recipient:
        """``crm.<object>.<field>`` (``…access_token.<field>`` for access tokens) and its value;
        a pass code is never recorded."""
        name = next(name for name in RECIPIENTS if getattr(self, name) is not None)
        identifier: _Identifier = getattr(self, name)
        field, value = identifier.named()
        if isinstance(value, AccessTokenIdentifier):
            inner, value = value.named()
            field = f"access_token.{inner}"
        return Recipient(f"crm.{name.removesuffix('_identifier')}.{field}", str(value))


# ---------------------------------------------------------------------- campaigns

ALIAS_PROTOCOLS = {"id": "crm-id", "name": "crm-name", "alternative_code": "crm-alternative-code"}


# ---------------------------------------------------------------------- rendering

_LIFE_CYCLE = {
    CodeState.AVAILABLE: "EFFECTIVE",
    CodeState.ISSUED: "EFFECTIVE",
    CodeState.USED: "USED",
    CodeState.BLOCKED: "NOT_EFFECTIVE",
}


def _date(moment: datetime | None) -> str | None:
    return None if moment is None else clock.format_crm(moment)


def _present(**attributes: str | None) -> dict[str, str]:
    # CRM.COM leaves out what a user or unit object does not know (the page's example).
    return {name: value for name, value in attributes.items() if value}


def _user(actor: str, caller: CrmCaller) -> dict[str, str]:
    if actor == caller.actor:
        return _present(
            id=caller.username,
            username=caller.username,
            person_name=caller.person_name,
            email=caller.email,
        )
    name = actor.removeprefix("crm:")  # another user, or another protocol's credential
    return {"id": name, "username": name}


def _unit(unit: PointOfContact | None) -> dict[str, str] | None:
    if unit is None:
        return None
    return _present(id=unit.external_id, name=unit.name or unit.external_id)


def campaign(pool: Pool) -> dict[str, Any]:
    crm = pool.aliases.crm_campaign
    if crm is None:
        raise PoolNotFound
    return {
        "id": crm.id,
        "name": crm.name,
        "alternative_code": crm.alternative_code,
        "description": crm.description,
        "long_description": crm.long_description,
        "short_description": crm.short_description,
        "type": crm.type,
    }


def promo_code(
    code: Code, pool: Pool, caller: CrmCaller, fields_set: tuple[str, ...] | None
) -> dict[str, Any]:
    """request_promo_code's ``data``, limited to ``fields_set``."""
    audit = code.audit
    by_caller = audit.updated_by == caller.actor
    data = {
        "id": code.uuid.hex.upper(),
        "code": code.value,
        "life_cycle_state": "NOT_EFFECTIVE" if code.is_deleted else _LIFE_CYCLE[code.state],
        "expiration_date": _date(code.validity.end),
        "promotion_campaign": campaign(pool),
        "log_information": {
            "created_date": _date(audit.created_at),
            "updated_date": _date(audit.updated_at),
            "created_by_unit": None,  # codes are created by imports and other protocols
            "created_by_user": _user(audit.created_by, caller),
            "updated_by_unit": _unit(code.issued_point_of_contact if by_caller else None),
            "updated_by_user": _user(audit.updated_by, caller),
        },
    }
    return select(data, fields_set)


def select(data: dict[str, Any], fields_set: tuple[str, ...] | None) -> dict[str, Any]:
    """``data`` limited to ``fields_set``: top-level names keep a field whole, dotted names
    (``promotion_campaign.name``) keep part of an object; unknown names are ignored."""
    if fields_set is None:
        return data
    tree: dict[str, Any] = {}
    for path in fields_set:
        node: dict[str, Any] | None = tree
        parts = [part.strip() for part in path.split(".")]
        for index, part in enumerate(parts):
            if node is None:  # an ancestor is already kept whole
                break
            if index == len(parts) - 1:
                node[part] = None  # keep whole
            else:
                node = node.setdefault(part, {})
    return _prune(data, tree)


def _prune(data: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    kept = {}
    for name, value in data.items():
        if name not in tree:
            continue
        wanted = tree[name]
        kept[name] = _prune(value, wanted) if wanted and isinstance(value, dict) else value
    return kept


# ---------------------------------------------------------------------- errors


class CrmStatus(NamedTuple):
    """A refusal's ``status`` object, and the HTTP status it travels with."""

    code: str
    description: str
    http_status: int = 200


ERRORS: ErrorTable[CrmStatus] = ErrorTable(
    {
        AuthenticationFailed: CrmStatus("AUTHENTICATION_FAILED", "Authentication failed"),
        MalformedRequest: CrmStatus("MALFORMED_REQUEST", "The request could not be read"),
        InvalidRequest: CrmStatus("INVALID_PARAMETER", "Invalid request parameters"),
        PoolNotFound: CrmStatus("PROMOTION_CAMPAIGN_NOT_FOUND", "Promotion campaign not found"),
        PoolClosed: CrmStatus(
            "PROMOTION_CAMPAIGN_NOT_ALLOWED", "Promotion campaign cannot provide promo codes"
        ),
        NoCodeAvailable: CrmStatus(
            "NO_PROMO_CODE_AVAILABLE", "No promo code is left in the promotion campaign"
        ),
        OutsideIssueWindow: CrmStatus(
            "PROMOTION_CAMPAIGN_NOT_EFFECTIVE", "Promotion campaign is not effective now"
        ),
        StoreUnavailable: CrmStatus("SERVICE_UNAVAILABLE", "Service unavailable", 503),
        PromoError: CrmStatus("REQUEST_REFUSED", "The request was refused"),
    },
    fallback=CrmStatus("UNEXPECTED_ERROR", "Unexpected error", 500),
)
_RETRY = "The service is temporarily unavailable; the request may be retried."


def envelope(
    http_status: int, data: Any, code: str, description: str, message: str
) -> HttpResponse:
    status = {"code": code, "description": description, "message": message}
    return HttpResponse(http_status, json_codec.dumps({"data": data, "status": status}), _JSON)


def ok(data: Any) -> HttpResponse:
    return envelope(200, data, "OK", "", "")


def error(status: CrmStatus, message: str) -> HttpResponse:
    return envelope(status.http_status, None, status.code, status.description, message)


def _unexpected(request: HttpRequest) -> HttpResponse:
    return error(ERRORS.answer(Exception()), "An unexpected error occurred.")


# ---------------------------------------------------------------------- endpoints


def _document(request: HttpRequest) -> dict[str, Any]:
    """The JSON object of parameters; an empty body is no parameters. ``token`` may also come
    in the query string, as CRM.COM's GET methods carry it."""
    if request.media_type("content-type") not in ("application/json", ""):
        raise MalformedRequest("Content-Type must be application/json.")
    document = json_codec.loads(request.body) if request.body.strip() else {}
    if not isinstance(document, dict):
        raise MalformedRequest("The body must be a JSON object.")
    if "token" not in document and "token" in request.query:
        document = {**document, "token": request.query["token"]}
    return document


def _handler(operation: Callable[[dict[str, Any], Services], Any]) -> LambdaHandler:
    def respond(request: HttpRequest) -> HttpResponse:
        try:
            data = operation(_document(request), services())
        except PromoError as refused:
            status = ERRORS.answer(refused)
            if status.http_status >= 500:
                logger.warning("Store unavailable", extra={"reason": refused.message})
                return error(status, _RETRY)
            return error(status, refused.message)
        return ok(data)

    return lambda_endpoint(respond, _unexpected)


def public_endpoint[M: BaseModel](
    model: type[M],
) -> Callable[[Callable[[M, Services], Any]], LambdaHandler]:
    """Decorate ``operation(request, services) -> data`` (no token needed: login, release)."""
    json_codec.built(model)

    def decorate(operation: Callable[[M, Services], Any]) -> LambdaHandler:
        return _handler(lambda document, svc: operation(json_codec.validate(document, model), svc))

    return decorate


def endpoint[M: BaseModel](
    model: type[M],
) -> Callable[[Callable[[M, CrmCaller, Services], Any]], LambdaHandler]:
    """Decorate ``operation(request, caller, services) -> data``: the token is checked before
    anything else is read, so a request without a live token changes nothing."""
    json_codec.built(model)

    def decorate(operation: Callable[[M, CrmCaller, Services], Any]) -> LambdaHandler:
        def call(document: dict[str, Any], svc: Services) -> Any:
            caller = authenticate(svc.credentials, document.get("token"))
            return operation(json_codec.validate(document, model), caller, svc)

        return _handler(call)

    return decorate


__all__ = [
    "ALIAS_PROTOCOLS",
    "CrmCaller",
    "LoginRequest",
    "ReleaseRequest",
    "RequestPromoCode",
    "endpoint",
    "promo_code",
    "public_endpoint",
    "select",
]
