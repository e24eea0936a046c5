"""SyncTV's endpoint decorator: authenticate, parse and validate the arguments, call, answer;
every refusal in SyncTV's error shape."""

from collections.abc import Callable

from pydantic import BaseModel

from promo.bootstrap import services
from promo.codecs import json as json_codec
from promo.domain.errors import PromoError
from promo.endpoint import LambdaHandler, lambda_endpoint
from promo.http import HttpRequest, HttpResponse
from promo.observability import logger
from promo.protocols.synctv.answers import Reply, error, ok
from promo.protocols.synctv.errors import ERRORS, UNEXPECTED, error_headers
from promo.protocols.synctv.requests import parameters
from promo.services import Services
from promo.store.credentials import CredentialStore


def _unexpected(request: HttpRequest) -> HttpResponse:
    return error(UNEXPECTED, "")


def endpoint[M: BaseModel, C](
    model: type[M], authenticate: Callable[[CredentialStore, HttpRequest], C]
) -> Callable[[Callable[[M, C, Services], Reply]], LambdaHandler]:
    """Decorate ``operation(arguments, caller, services) -> Reply`` into a Lambda handler:
    authenticate, parse and validate the arguments, call, render; every refusal in SyncTV's
    error shape. Authentication comes first, so a refused caller learns nothing more."""
    json_codec.built(model)

    def decorate(operation: Callable[[M, C, Services], Reply]) -> LambdaHandler:
        def respond(request: HttpRequest) -> HttpResponse:
            try:
                svc = services()
                caller = authenticate(svc.credentials, request)
                arguments = json_codec.validate(parameters(request), model)
                reply = operation(arguments, caller, svc)
            except PromoError as refused:
                answer = ERRORS.answer(refused)
                if answer.status >= 500:
                    logger.warning("Store unavailable", extra={"reason": refused.message})
                return error(answer, refused.message, error_headers(refused))
            return ok(reply)

        return lambda_endpoint(respond, _unexpected)

    return decorate
