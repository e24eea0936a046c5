"""Maestra's endpoint decorator: authenticate, parse, call, answer; every outcome in Mindbox's
shapes and in the format the client asked for."""

from collections.abc import Callable
from typing import Any

from promo.bootstrap import services
from promo.domain.errors import PromoError, StoreUnavailable
from promo.endpoint import LambdaHandler, lambda_endpoint
from promo.http import HttpRequest, HttpResponse
from promo.observability import logger
from promo.protocols.maestra.answers import answer, refusal, wants_xml
from promo.protocols.maestra.requests import OperationCall, read_call
from promo.services import Services


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
