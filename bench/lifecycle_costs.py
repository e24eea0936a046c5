"""What the lifecycle features cost in DynamoDB requests, next to the writes each one needs.

Each row of ``ROWS`` is one feature: a pool of bench.yaml, how to get its codes ready, and the
operation measured, sent through the Maestra sync handler as a client would (credentials and
pool cached). The floor is the writes the operation cannot do without; the figure is the
writes it made (a write whose condition failed counts), and the note has every request. A
new feature is one more ``Row``.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.counting import Requests
from bench.events import invoke, maestra_code_event, maestra_issue_event
from bench.results import Result, at_most, reported

OPERATIONS = 100  # measured operations per row
WRITES = ("UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


@dataclass(frozen=True)
class Row:
    name: str
    pool: str  # of bench.yaml, with enough codes for the row
    floor: float  # write requests the operation needs
    # Given a code issued from the pool for it, the events the row measures, in order.
    events: Callable[[str], list[dict[str, Any]]]
    # Events sent first and not measured, given the same code (a redeem before a rollback).
    before: Callable[[str], list[dict[str, Any]]] = lambda _: []
    issued_by_row: bool = False  # the row's own events issue its codes (no code is given)
    # Held to 1.05 of its floor; otherwise reported (a cost the design accepts, said why).
    targeted: bool = True


def redeem_uses(uses: int) -> Callable[[str], list[dict[str, Any]]]:
    return lambda value: [maestra_code_event("RedeemPromoCode", value)] * uses


def once(operation: str) -> Callable[[str], list[dict[str, Any]]]:
    return lambda value: [maestra_code_event(operation, value)]


ROWS = (
    Row(
        "redeem a multi-use code (redemptions_per_code 5), each use",
        "multi-use",
        1.0,
        redeem_uses(5),
    ),
    Row(
        "issue from a pool with max_codes_per_recipient",
        "limited",
        1.0,  # one transaction: the code and the recipient's counter
        lambda value: [maestra_issue_event("limited", customer=value)],
        issued_by_row=True,
    ),
    Row(
        "roll back a redemption (rollback-redemption)",
        "rollbacks",
        1.0,  # the conditional write; a rollback reads the code first, by design
        lambda value: [maestra_code_event("RollbackRedemption", value)],
        before=redeem_uses(1),
    ),
    Row("hold a use (reserve)", "holds", 1.0, once("ReservePromoCode")),
    Row(
        "give a held use back (release)",
        "releases",
        1.0,
        once("ReleasePromoCode"),
        before=once("ReservePromoCode"),
    ),
    Row(
        "redeem through the redeemer's own hold",
        "held-redeems",
        1.0,  # its first write, which requires the redeemer to hold nothing, fails by design
        once("RedeemPromoCode"),
        before=once("ReservePromoCode"),
        targeted=False,
    ),
)


def lifecycle_costs(requests: Requests) -> dict[str, Result]:
    from functions.maestra_sync.app import handler

    results = {}
    for row in ROWS:
        invoke(handler, maestra_issue_event(row.pool))  # warm: credentials and pool cached
        events: list[dict[str, Any]] = []
        for index in range(OPERATIONS // len(row.events("warm"))):
            value = f"customer-{index}" if row.issued_by_row else issue(handler, row.pool)
            for event in row.before(value):
                answer(handler, event)
            events += row.events(value)
        requests.reset()
        for event in events:
            answer(handler, event)
        writes = sum(requests.calls[name] for name in WRITES) / len(events)
        spread = ", ".join(f"{n} {c / len(events):.2f}" for n, c in sorted(requests.calls.items()))
        note = (
            f"{len(events)} operations; requests per operation {requests.total / len(events):.2f}"
            f" ({spread}); failed conditional writes {requests.lost}"
        )
        name = f"writes per operation: {row.name}"
        if row.targeted:
            results[name] = at_most(writes, row.floor, 1.05, "writes", note)
        else:
            results[name] = reported(writes, row.floor, "writes", note)
    return results


def issue(handler: Any, pool: str) -> str:
    body = answer(handler, maestra_issue_event(pool))
    return str(body["promoCode"]["ids"]["value"])


def answer(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    response = invoke(handler, event)
    body: dict[str, Any] = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert body.get("status") == "Success", body
    assert "validationMessages" not in body, body  # a refused redeem or rollback
    return body
