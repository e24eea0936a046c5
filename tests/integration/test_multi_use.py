"""Multi-use codes (issue 16, item 1) against DynamoDB Local, from separate processes.

A code of a pool with ``redemptions_per_code: N`` is redeemed at most N times, and exactly N
times when N or more redemptions are attempted: each redemption is one conditional write whose
condition is that a use is left. Callers run in separate processes (as Lambda instances do),
several threads each, every thread with its own stores.
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from promo.domain.errors import StoreUnavailable, TransitionRefused
from promo.domain.lifecycle import is_redeemable
from promo.domain.models import CodeState, Issuance, NewCode, Recipient
from tests.support.builders import ACTOR, moment, pool, tenant
from tests.support.processes import in_processes, process_client, thread_stores
from tests.support.tables import Stores
from tools.dynamodb_local import DynamoDBLocal

USES = 1000
PROCESSES = 8
THREADS = 8  # 64 concurrent callers
ATTEMPTS = 1500


def _redeem_in_a_process(
    endpoint: str, table_name: str, value: str, attempts: int, threads: int, first: int
) -> Counter[str]:
    """``attempts`` redemptions of ``value`` from ``threads`` threads of this process."""
    client = process_client(endpoint, threads)

    def caller(thread: int) -> Counter[str]:
        mine = thread_stores(client, table_name)
        outcomes: Counter[str] = Counter()
        for attempt in range(thread, attempts, threads):
            recipient = Recipient("maestra.webSiteUserId", f"c-{first + attempt}")
            try:
                mine.codes.redeem("acme", value, Issuance(moment(), ACTOR, recipient))
                outcomes["redeemed"] += 1
            except TransitionRefused:
                outcomes["refused"] += 1
            except StoreUnavailable:
                outcomes["unavailable"] += 1
        return outcomes

    with ThreadPoolExecutor(threads) as executor:
        return sum(executor.map(caller, range(threads)), Counter())


@pytest.fixture
def stores(local_stores: Stores) -> Stores:
    local_stores.catalog.put_tenant(tenant("acme"))
    return local_stores


def test_given_a_1000_use_code_redeemed_1500_times_by_64_callers_in_8_processes_then_exactly_1000_succeed(
    stores: Stores, dynamodb_local: DynamoDBLocal
) -> None:
    multi = pool(redemptions_per_code=USES)
    stores.catalog.put_pool(multi)
    (code,) = stores.codes.add("acme", {"spring": multi}, [NewCode("spring", "MANY-1000")], ACTOR)
    shares = [ATTEMPTS // PROCESSES + (i < ATTEMPTS % PROCESSES) for i in range(PROCESSES)]
    outcomes = in_processes(
        _redeem_in_a_process,
        [
            (
                dynamodb_local.endpoint,
                stores.table_name,
                code.value,
                shares[index],
                THREADS,
                sum(shares[:index]),
            )
            for index in range(PROCESSES)
        ],
    )

    assert sum(shares) == ATTEMPTS
    assert outcomes["unavailable"] == 0
    assert outcomes["redeemed"] == USES
    assert outcomes["refused"] == ATTEMPTS - USES
    spent = stores.codes.get("acme", code.value)
    assert spent is not None
    assert spent.state is CodeState.USED
    assert spent.uses_left == 0
    assert spent.is_spent
    assert not is_redeemable(spent, moment())
    item: dict[str, Any] = (
        stores.table.get({"pk": {"S": "T#acme#V#MANY-1000"}, "sk": {"S": "CODE"}}) or {}
    )
    redemptions = item["redemptions"]["L"]
    assert len(redemptions) == USES  # each redemption recorded: when, by whom
    assert len({r["M"]["by"]["S"] for r in redemptions}) == USES


def test_given_a_multi_use_code_then_it_stays_redeemable_and_unspent_until_its_last_use(
    stores: Stores,
) -> None:
    three = pool(redemptions_per_code=3)
    stores.catalog.put_pool(three)
    (code,) = stores.codes.add("acme", {"spring": three}, [NewCode("spring", "THRICE")], ACTOR)

    states = []
    for customer in ("a", "b", "c"):
        redeemed = stores.codes.redeem(
            "acme", code.value, Issuance(moment(), ACTOR, Recipient("crm.contact", customer))
        )
        states.append((redeemed.uses_left, redeemed.is_spent, is_redeemable(redeemed, moment())))
    with pytest.raises(TransitionRefused, match="no redemption left"):
        stores.codes.redeem("acme", code.value, Issuance(moment(), ACTOR))

    assert states == [(2, False, True), (1, False, True), (0, True, False)]
    last = stores.codes.get("acme", code.value)
    assert last is not None
    assert last.used_by == "c"  # the redemption that spent it


def test_given_a_partly_used_multi_use_code_then_it_can_be_blocked_and_is_then_not_redeemable(
    stores: Stores,
) -> None:
    two = pool(redemptions_per_code=2)
    stores.catalog.put_pool(two)
    (code,) = stores.codes.add("acme", {"spring": two}, [NewCode("spring", "TWICE")], ACTOR)
    stores.codes.redeem("acme", code.value, Issuance(moment(), ACTOR))

    blocked = stores.codes.block("acme", code.value, moment(), ACTOR)

    assert blocked.state is CodeState.BLOCKED
    with pytest.raises(TransitionRefused):
        stores.codes.redeem("acme", code.value, Issuance(moment(), ACTOR))


def test_given_a_single_use_code_then_one_redemption_spends_it_in_one_write(stores: Stores) -> None:
    single = pool()
    stores.catalog.put_pool(single)
    (code,) = stores.codes.add("acme", {"spring": single}, [NewCode("spring", "ONCE")], ACTOR)

    redeemed = stores.codes.redeem("acme", code.value, Issuance(moment(), ACTOR))

    assert redeemed.is_spent
    with pytest.raises(TransitionRefused):
        stores.codes.redeem("acme", code.value, Issuance(moment(), ACTOR))
