"""Maestra ``POST /v3/operations/sync``: perform the operation, answer its outcome."""

from typing import Any

from promo.protocols import maestra
from promo.services import Services, issuing


@maestra.endpoint
def handler(call: maestra.OperationCall, svc: Services) -> dict[str, Any]:
    step = call.step()
    outcome = issuing.perform_step(svc, step)
    return maestra.success(outcome, step)
