"""CRM.COM's endpoint decorators: read the parameters, check the token (except for login and
release), validate, call, answer in the envelope; every refusal in the one error table's shape."""

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from promo.bootstrap import services
from promo.codecs import json as json_codec
from promo.domain.errors import PromoError
from promo.endpoint import LambdaHandler, lambda_endpoint
from promo.http import HttpRequest, HttpResponse
from promo.observability import logger
from promo.protocols.crm.answers import error, ok
from promo.protocols.crm.auth import CrmCaller, authenticate
from promo.protocols.crm.errors import ERRORS
from promo.protocols.crm.requests import parameters
from promo.services import Services

_RETRY = "The service is temporarily unavailable; the request may be retried."


def _unexpected(request: HttpRequest) -> HttpResponse:
    return error(ERRORS.answer(Exception()), "An unexpected error occurred.")


def _handler(operation: Callable[[dict[str, Any], Services], Any]) -> LambdaHandler:
    def respond(request: HttpRequest) -> HttpResponse:
        try:
            data = operation(parameters(request), services())
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
