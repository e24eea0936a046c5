"""Maestra's async queue message: what the async function sends and the worker performs.

A message carries everything the worker needs to perform the call later, exactly as the client
asked it (the same body, its fingerprint, the time it was received, the idempotency key), and
never the endpoint's secret key: the endpoint was authenticated when the message was sent.
"""

from datetime import datetime
from typing import Any

from promo.domain import clock
from promo.protocols.maestra.auth import MaestraCaller
from promo.protocols.maestra.requests import (
    OperationBody,
    OperationCall,
    UnknownOperation,
    body_fingerprint,
    check_execution_time,
)
from promo.services import Services


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
    caller = MaestraCaller(endpoint)
    body = OperationBody.model_validate(message["body"])
    received_at = clock.from_stored(message["received_at"])
    # Judged against the time the call was accepted, as it was then.
    check_execution_time(body, received_at, caller, svc.settings.maestra_clock_skew_seconds)
    return OperationCall(
        caller=caller,
        operation=message["operation"],
        body=body,
        transaction_id=message["key"],
        fingerprint=message["fingerprint"],
        received_at=received_at,
    )
