"""CRM.COM Web API requests (JSON, under /crmapi/rest/v2/): the parameters of
authentication/token, authentication/token/release and promotion_campaigns/request_promo_code.

Contract and choices where it is silent: docs/protocols/crm.md.
"""

from typing import Annotated, Any, ClassVar

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

from promo.codecs import json as json_codec
from promo.codecs.fields import WIRE_TEXT
from promo.domain.errors import MalformedRequest
from promo.domain.models import Recipient
from promo.http import HttpRequest

# Identifiers and names can be recorded (a recipient) and so reach an answer: each is refused
# when XML 1.0 could not carry it (promo.domain.values.check_wire_text).
Text = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=256),
    WIRE_TEXT,
]
Secret = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=1024)]


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
    token: Any = None  # checked by auth.release, as on every other method


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


# The pool alias each kind of campaign identifier names.
ALIAS_PROTOCOLS = {"id": "crm-id", "name": "crm-name", "alternative_code": "crm-alternative-code"}


def parameters(request: HttpRequest) -> dict[str, Any]:
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
