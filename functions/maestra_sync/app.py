"""Maestra ``POST /v3/operations/sync``: perform the operation, answer its outcome."""

from typing import Any

from promo import services
from promo.protocols import maestra


@maestra.endpoint
def handler(call: maestra.OperationCall, svc: services.Services) -> dict[str, Any]:
    step = call.step()
    outcome = services.perform_step(svc, step)
    return maestra.success(outcome, step, svc)
