"""Mews' endpoint decorator: parse, authenticate, validate, call, answer; every refusal in Mews'
error shape."""

from collections.abc import Callable
from typing import Any

from promo.bootstrap import services
from promo.codecs import json as json_codec
from promo.domain import clock
from promo.domain.errors import InvalidRequest, PromoError, TooManyAttempts
from promo.endpoint import LambdaHandler, lambda_endpoint
from promo.http import HttpRequest, HttpResponse
from promo.observability import logger
from promo.protocols.mews.answers import error, ok, too_many_requests, unexpected
from promo.protocols.mews.auth import MewsCaller, authenticate
from promo.protocols.mews.errors import ERRORS
from promo.protocols.mews.requests import Envelope
from promo.services import Services
from promo.services.limits import count_request


def endpoint[M: Envelope](
    model: type[M],
) -> Callable[[Callable[[M, MewsCaller, Services], dict[str, Any]]], LambdaHandler]:
    """Decorate ``operation(request, caller, services) -> body`` into a Lambda handler:
    parse, authenticate, count the AccessToken's request (429 past its limit), validate, call,
    render; every refusal in Mews' error shape."""
    json_codec.built(model)

    def decorate(operation: Callable[[M, MewsCaller, Services], dict[str, Any]]) -> LambdaHandler:
        def respond(request: HttpRequest) -> HttpResponse:
            try:
                if request.media_type("content-type") not in ("application/json", ""):
                    raise InvalidRequest("Content-Type must be application/json.")
                svc = services()
                document = json_codec.loads(request.body)
                caller = authenticate(svc.credentials, document)
                count_request(svc.mews_limit, *caller.limit_key, clock.now())
                body = operation(json_codec.validate(document, model), caller, svc)
            except TooManyAttempts as limited:
                return too_many_requests(limited.retry_after, request)
            except PromoError as refused:
                status = ERRORS.answer(refused)
                if status >= 500:
                    logger.warning("Store unavailable", extra={"reason": refused.message})
                    return unexpected(request)
                return error(status, refused.message, request)
            return ok(body, request)

        return lambda_endpoint(respond, unexpected)

    return decorate
