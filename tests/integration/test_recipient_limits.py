"""Per-recipient limits (issue 16, item 2) against DynamoDB Local, from separate processes.

A pool's ``max_codes_per_recipient`` bounds how many of its codes one recipient is ever issued:
the recipient's counter is updated, on condition that it is below the limit, in the same
transaction that issues the code, on every issuing path (claim from the pool, issue by value,
create-and-issue, a CRM.COM request, which claims).
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from promo.domain.errors import RecipientLimitReached, StoreUnavailable
from promo.domain.models import CodeState, Issuance, NewCode, Recipient, StepKind, Window
from promo.protocols.crm.errors import ERRORS as CRM_ERRORS
from promo.protocols.maestra.errors import ISSUE_STATUSES
from promo.services.issuing import Step, perform_step
from tests.integration.test_request_costs import RequestCounter
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.processes import in_processes, process_client, thread_stores
from tests.support.tables import Stores
from tools.dynamodb_local import DynamoDBLocal

CUSTOMER = Recipient("maestra.webSiteUserId", "customer-1")
PROCESSES = 4
THREADS = 8  # 32 concurrent issues


def _claim_in_a_process(endpoint: str, table_name: str, limit: int, threads: int) -> Counter[str]:
    client = process_client(endpoint, threads)

    def caller(_: int) -> str:
        mine = thread_stores(client, table_name)
        try:
            mine.codes.claim(
                pool(max_codes_per_recipient=limit), Issuance(moment(), ACTOR, CUSTOMER)
            )
        except RecipientLimitReached:
            return "refused"
        except StoreUnavailable:
            return "unavailable"
        return "issued"

    with ThreadPoolExecutor(threads) as executor:
        return Counter(executor.map(caller, range(threads)))


@pytest.fixture
def stores(local_stores: Stores) -> Stores:
    local_stores.catalog.put_tenant(tenant("acme"))
    return local_stores


def issued_to(stores: Stores, recipient: Recipient) -> list[str]:
    return [
        code.value
        for _, code in stores.codes.list("acme", ["spring"])
        if code.issued_to == recipient and code.state is CodeState.ISSUED
    ]


def test_given_a_limit_of_one_when_32_callers_in_4_processes_issue_to_one_customer_then_exactly_one_code_is_issued(
    stores: Stores, dynamodb_local: DynamoDBLocal
) -> None:
    limited = pool(max_codes_per_recipient=1)
    stores.catalog.put_pool(limited)
    stores.codes.add("acme", {"spring": limited}, new_codes("spring", 100, "LIM"), ACTOR)

    arguments = (dynamodb_local.endpoint, stores.table_name, 1, THREADS)
    outcomes = in_processes(_claim_in_a_process, [arguments] * PROCESSES)

    assert outcomes == Counter({"issued": 1, "refused": PROCESSES * THREADS - 1})
    assert len(issued_to(stores, CUSTOMER)) == 1


def _step(kind: StepKind, value: str | None, recipient: Recipient) -> Step:
    return Step(
        kind, "acme", "maestra", value, "spring-ext", Window(), Issuance(moment(), ACTOR, recipient)
    )


def test_given_a_limit_of_two_then_every_issuing_path_counts_toward_it_and_the_third_is_refused(
    stores: Stores,
) -> None:
    limited = pool(max_codes_per_recipient=2)
    stores.catalog.put_pool(limited)
    stores.codes.add("acme", {"spring": limited}, new_codes("spring", 5, "PATH"), ACTOR)
    svc = stores.services()

    from_pool = perform_step(svc, _step(StepKind.FROM_POOL, None, CUSTOMER))
    assert from_pool.code is not None
    # A code the claim did not take (it takes one at random).
    chosen = "PATH00004" if from_pool.code.value != "PATH00004" else "PATH00003"
    by_value = perform_step(svc, _step(StepKind.BY_VALUE, chosen, CUSTOMER))
    created = perform_step(svc, _step(StepKind.BY_VALUE_CREATE, "PATH-NEW", CUSTOMER))
    again = perform_step(svc, _step(StepKind.FROM_POOL, None, CUSTOMER))
    someone_else = perform_step(svc, _step(StepKind.FROM_POOL, None, Recipient("crm.contact", "x")))

    assert from_pool.refusal is None
    assert by_value.refusal is None
    assert isinstance(created.refusal, RecipientLimitReached)
    assert isinstance(again.refusal, RecipientLimitReached)
    assert someone_else.refusal is None  # the limit is per recipient
    assert sorted(issued_to(stores, CUSTOMER)) == sorted([from_pool.code.value, chosen])
    assert stores.codes.get("acme", "PATH-NEW") is None  # the refused creation wrote nothing
    assert stores.codes.get("acme", chosen).state is CodeState.ISSUED  # type: ignore[union-attr]


def test_given_a_limit_then_a_create_and_issue_beyond_it_writes_nothing(stores: Stores) -> None:
    limited = pool(max_codes_per_recipient=1)
    stores.catalog.put_pool(limited)
    stores.codes.create_issued(
        limited, NewCode("spring", "FIRST"), Issuance(moment(), ACTOR, CUSTOMER)
    )

    with pytest.raises(RecipientLimitReached):
        stores.codes.create_issued(
            limited, NewCode("spring", "SECOND"), Issuance(moment(), ACTOR, CUSTOMER)
        )

    assert stores.codes.get("acme", "SECOND") is None


def test_a_pool_without_a_limit_keeps_one_write_per_issue_and_a_limited_one_one_transaction(
    stores: Stores,
) -> None:
    # One shard each: the first claim's page holds every other code, so no claim reads again.
    unlimited = pool(shard_count=1)
    limited = pool(pool_id="limited", offer_id=3, shard_count=1, max_codes_per_recipient=5)
    for each in (unlimited, limited):
        stores.catalog.put_pool(each)
        stores.codes.add(
            "acme", {each.pool_id: each}, new_codes(each.pool_id, 4, each.pool_id), ACTOR
        )
    stores.codes.claim(unlimited, Issuance(moment(), ACTOR, CUSTOMER))  # reads the index page
    stores.codes.claim(limited, Issuance(moment(), ACTOR, CUSTOMER))

    with RequestCounter(stores) as plain:
        stores.codes.claim(unlimited, Issuance(moment(), ACTOR, CUSTOMER))
    with RequestCounter(stores) as counted:
        stores.codes.claim(limited, Issuance(moment(), ACTOR, CUSTOMER))

    assert dict(plain.calls) == {"UpdateItem": 1}
    assert dict(counted.calls) == {"TransactWriteItems": 1}


def test_the_refusal_is_each_vendors_own() -> None:
    refused = RecipientLimitReached()

    assert ISSUE_STATUSES.answer(refused) == "NotAvailableForIssue"
    assert CRM_ERRORS.answer(refused).code == "RECIPIENT_LIMIT_REACHED"
