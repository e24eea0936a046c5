"""The wrapper every handler shares (promo/endpoint.py)."""

import sys
from concurrent.futures import ThreadPoolExecutor

from promo.endpoint import lambda_endpoint
from promo.http import HttpRequest, HttpResponse
from promo.observability import count
from tests.support.deployment import invoke
from tools.lambda_runtime import http_api_event


def test_handlers_on_threads_sharing_one_metrics_recorder_never_fail_to_flush() -> None:
    """The local stack and the benchmark run handlers on threads of one process; one thread
    flushing the shared metrics while another counts or flushes must not fail either."""

    def respond(_: HttpRequest) -> HttpResponse:
        count("IssuedCodes")
        return HttpResponse(200, b"{}", "application/json")

    def unexpected(_: HttpRequest) -> HttpResponse:
        return HttpResponse(500, b"{}", "application/json")

    handler = lambda_endpoint(respond, unexpected)
    event = http_api_event("GET", "/probe", "GET /probe", b"", {})

    def invoke_many(_: int) -> list[int]:
        return [invoke(handler, event)["statusCode"] for _ in range(200)]

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so that the interleavings happen
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = [status for batch in pool.map(invoke_many, range(8)) for status in batch]
    finally:
        sys.setswitchinterval(switching)

    assert statuses == [200] * 1600
