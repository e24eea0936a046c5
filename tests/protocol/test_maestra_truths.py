"""Maestra answers that match what happened (issue 15): async refuses at acceptance what sync
refuses and never loses a request silently; the effective time is bounded; every
authentication failure reads the same. Every refusal leaves the table as it was."""

from typing import Any

import pytest

from promo.bootstrap import services
from tests.protocol.test_maestra import KEY, call, customer
from tests.support.tables import Stores
from tools import admin
from tools.template import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def demo(deployed: Stores) -> Stores:
    admin.apply_config(ROOT / "config" / "demo.yaml", services())
    return deployed


def table_items(stores: Stores) -> list[dict[str, Any]]:
    """Every item of the table, in a stable order: what "the table is unchanged" compares."""
    items = list(stores.table.paginate(stores.table.scan))
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def without_error_id(answer: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in answer.items() if name != "errorId"}


# ---------------------------------------------------------------- one 401 for every failure


BAD_CREDENTIALS = {
    "unknown endpoint": ({"endpointId": "no-such-endpoint"}, f"SecretKey {KEY}"),
    "no endpoint": ({"endpointId": ""}, f"SecretKey {KEY}"),
    "no key": ({}, None),
    "wrong key": ({}, "SecretKey wrong"),
    "wrong scheme": ({}, f"Bearer {KEY}"),
    "wrong legacy key": ({}, f'Mindbox secretKey="{KEY}x"'),
    "unknown endpoint without a key": ({"endpointId": "no-such-endpoint"}, None),
}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_given_any_bad_credentials_when_calling_then_every_401_is_the_same_word_for_word(
    demo: Stores, fmt: str
) -> None:
    before = table_items(demo)

    answers = {
        case: call("IssueSpringPromoCode", customer(), query=query, authorization=header, fmt=fmt)
        for case, (query, header) in BAD_CREDENTIALS.items()
    }

    statuses = {case: status for case, (status, _, _) in answers.items()}
    bodies = {case: without_error_id(body) for case, (_, body, _) in answers.items()}
    assert set(statuses.values()) == {401}, statuses
    assert len({repr(sorted(body.items())) for body in bodies.values()}) == 1, bodies
    assert bodies["unknown endpoint"]["status"] == "ProtocolError"
    assert table_items(demo) == before
