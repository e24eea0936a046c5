"""Redemption rollback (issue 16, item 4) against DynamoDB Local, racing from separate processes.

A rollback gives one redemption back (a spent single-use code is ISSUED again; a multi-use
code gets a use back), recorded with its reason and actor, idempotent under retries and with
a receipt; racing redeems, it never loses or doubles a use.
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from promo.domain.errors import NothingToRollBack, StoreUnavailable, TransitionRefused
from promo.domain.lifecycle import is_redeemable
from promo.domain.models import CodeState, Issuance, NewCode, Receipt, Recipient, StepKind, Window
from promo.services.issuing import Step, perform_step
from tests.support.builders import ACTOR, moment, pool, tenant
from tests.support.processes import in_processes, process_client, thread_stores
from tests.support.tables import Stores
from tools import admin
from tools.dynamodb_local import DynamoDBLocal

USES = 40
PROCESSES = 4
THREADS = 6


def _redeem_and_roll_back(endpoint: str, table_name: str, value: str, worker: int) -> Counter[str]:
    """Each thread redeems the code and, every third time, rolls one redemption back."""
    client = process_client(endpoint, THREADS)

    def caller(thread: int) -> Counter[str]:
        mine = thread_stores(client, table_name)
        done: Counter[str] = Counter()
        for attempt in range(12):
            issuance = Issuance(moment(), ACTOR, Recipient("crm.contact", f"{worker}-{thread}"))
            try:
                if attempt % 3 == 2:
                    mine.codes.roll_back_redemption("acme", value, issuance, "order cancelled")
                    done["rolled back"] += 1
                else:
                    mine.codes.redeem("acme", value, issuance)
                    done["redeemed"] += 1
            except (TransitionRefused, NothingToRollBack):
                done["refused"] += 1
            except StoreUnavailable:
                done["unavailable"] += 1
        return done

    with ThreadPoolExecutor(THREADS) as executor:
        return sum(executor.map(caller, range(THREADS)), Counter())


@pytest.fixture
def stores(local_stores: Stores) -> Stores:
    local_stores.catalog.put_tenant(tenant("acme"))
    return local_stores


def add_one(stores: Stores, value: str, uses: int = 1) -> None:
    the_pool = pool(redemptions_per_code=uses)
    stores.catalog.put_pool(the_pool)
    stores.codes.add("acme", {"spring": the_pool}, [NewCode("spring", value)], ACTOR)


def code_item(stores: Stores, value: str) -> dict[str, Any]:
    return stores.table.get({"pk": {"S": f"T#acme#V#{value}"}, "sk": {"S": "CODE"}}) or {}


def test_given_rollbacks_racing_redeems_from_4_processes_then_no_use_is_lost_or_doubled(
    stores: Stores, dynamodb_local: DynamoDBLocal
) -> None:
    add_one(stores, "RACED", USES)
    done = in_processes(
        _redeem_and_roll_back,
        [(dynamodb_local.endpoint, stores.table_name, "RACED", w) for w in range(PROCESSES)],
    )

    item = code_item(stores, "RACED")
    uses_left = int(item["uses_left"]["N"])
    recorded_redemptions = len(item["redemptions"]["L"])
    recorded_rollbacks = len(item.get("rollbacks", {"L": []})["L"])
    # A rollback told the code was too busy ("unavailable", retry) wrote nothing: the counts
    # of successes answered and of changes recorded on the code must agree exactly.
    assert done["rolled back"] > 0
    assert done["redeemed"] == recorded_redemptions  # every success answered is on the code
    assert done["rolled back"] == recorded_rollbacks
    assert uses_left == USES - done["redeemed"] + done["rolled back"]  # none lost or doubled
    assert 0 <= uses_left <= USES


def test_given_a_spent_single_use_code_when_rolled_back_then_it_is_issued_and_redeemable_again(
    stores: Stores,
) -> None:
    add_one(stores, "ONCE")
    stores.codes.issue("acme", "ONCE", Issuance(moment(), ACTOR))
    stores.codes.redeem("acme", "ONCE", Issuance(moment(), ACTOR))

    back = stores.codes.roll_back_redemption(
        "acme", "ONCE", Issuance(moment(), "admin:ops"), "order 42 cancelled"
    )

    assert back.state is CodeState.ISSUED
    assert is_redeemable(back, moment())
    (rollback,) = code_item(stores, "ONCE")["rollbacks"]["L"]
    assert rollback["M"]["reason"]["S"] == "order 42 cancelled"
    assert rollback["M"]["actor"]["S"] == "admin:ops"
    with pytest.raises(NothingToRollBack):
        stores.codes.roll_back_redemption("acme", "ONCE", Issuance(moment(), ACTOR), "again")
    assert stores.codes.redeem("acme", "ONCE", Issuance(moment(), ACTOR)).is_spent


def test_given_a_multi_use_code_when_a_redemption_is_rolled_back_then_one_use_comes_back(
    stores: Stores,
) -> None:
    add_one(stores, "THRICE", 3)
    for _ in range(3):
        stores.codes.redeem("acme", "THRICE", Issuance(moment(), ACTOR))

    back = stores.codes.roll_back_redemption("acme", "THRICE", Issuance(moment(), ACTOR), "r")

    assert back.uses_left == 1
    assert not back.is_spent
    assert back.state is CodeState.USED  # still used twice


def test_given_a_code_never_redeemed_then_there_is_nothing_to_roll_back(stores: Stores) -> None:
    add_one(stores, "FRESH")

    with pytest.raises(NothingToRollBack):
        stores.codes.roll_back_redemption("acme", "FRESH", Issuance(moment(), ACTOR), "r")


def test_given_a_rollback_with_a_transaction_id_retried_then_one_use_is_given_back_once(
    stores: Stores,
) -> None:
    add_one(stores, "KEYED", 3)
    for _ in range(2):
        stores.codes.redeem("acme", "KEYED", Issuance(moment(), ACTOR))
    step = Step(
        StepKind.ROLLBACK_REDEMPTION,
        "acme",
        "maestra",
        "KEYED",
        None,
        Window(),
        Issuance(moment(), ACTOR, receipt=Receipt("maestra#shop#Rollback", "tx-1", "fp")),
    )

    first = perform_step(stores.services(), step)
    retried = perform_step(stores.services(), step)

    assert first.refusal is None
    assert retried.replayed
    assert retried.refusal is None
    assert len(code_item(stores, "KEYED")["rollbacks"]["L"]) == 1
    assert stores.codes.get("acme", "KEYED").uses_left == 2  # type: ignore[union-attr]


def test_promo_admin_rolls_a_redemption_back_with_its_reason(
    stores: Stores, dynamodb_local: DynamoDBLocal, capsys: pytest.CaptureFixture[str]
) -> None:
    add_one(stores, "ADMIN")
    stores.codes.redeem("acme", "ADMIN", Issuance(moment(), ACTOR))

    status = admin.main(
        [
            "--table",
            stores.table_name,
            "--endpoint-url",
            dynamodb_local.endpoint,
            "redemption",
            "rollback",
            "ADMIN",
            "--tenant",
            "acme",
            "--reason",
            "refund 7",
        ]
    )

    assert status == 0
    assert "rolled back one redemption of ADMIN" in capsys.readouterr().out
    (rollback,) = code_item(stores, "ADMIN")["rollbacks"]["L"]
    assert rollback["M"]["reason"]["S"] == "refund 7"
    assert rollback["M"]["actor"]["S"].startswith("admin:")
