"""A write recognises itself (issue 15, item 2), against DynamoDB Local.

For every kind of write, DynamoDB applies it and its answer is dropped (the connection closes;
``test_faults.FaultInjector``'s ``dropped`` fault):

- once: botocore retries the same request, which meets the write's own first attempt. The
  caller must be answered with the success it was — the code it claimed, issued, redeemed,
  blocked, created, added or deleted — never a refusal, and never a second code;
- on every attempt: nothing can tell the caller what happened. It must be told the outcome is
  unknown (``StoreUnavailable``), never a refusal; the table holds the one change the request
  made, and a caller that retries with the same idempotency key is answered with it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from promo.domain.errors import StoreUnavailable
from promo.domain.models import (
    Code,
    CodeState,
    Issuance,
    NewCode,
    Receipt,
    Recipient,
    StepKind,
    Window,
)
from promo.services.issuing import Step, perform_step
from promo.services.tenants import put_tenant
from tests.integration.test_faults import (
    DROPPED,
    SEED,
    STAGED,
    FaultInjector,
    FaultyStores,
    code_items,
    faulty,
    stores,
)
from tests.support.builders import ACTOR, NO_WAIT, moment, new_codes, pool, tenant
from tests.support.tables import Stores

__all__ = ["faulty", "stores"]  # the fixtures, shared with test_faults

ONCE = [DROPPED]
# More than botocore's four attempts times the store's own three tries of a transaction.
EVERY_ATTEMPT = [DROPPED] * 16
RECIPIENT = Recipient("crm.contact", "lost-answer-recipient")
TENANT = "acme"


def receipt(key: str) -> Receipt:
    return Receipt("maestra#lost-answers", key, f"fingerprint-{key}")


def seeded(stores: Stores, count: int = 3, prefix: str = "LOST") -> list[str]:
    added = stores.codes.add(TENANT, {"spring": pool()}, new_codes("spring", count, prefix), ACTOR)
    return [code.value for code in added]


def issued(stores: Stores) -> dict[str, dict[str, Any]]:
    items = code_items(stores)
    return {value: item for value, item in items.items() if item["state"]["S"] != "AVAILABLE"}


@dataclass(frozen=True)
class Kind:
    """One kind of write: where its decisive request goes, how to make it, what it changed."""

    point: str
    prepare: Callable[[Stores], list[str]]
    write: Callable[[Stores, list[str]], Any]
    # The table after the write landed once, as (value -> state) of every code not AVAILABLE.
    changed: Callable[[list[str]], dict[str, str]]
    # What a successful answer must say, given the prepared values.
    answered: Callable[[Any, list[str]], bool]


def _issue_first(stores: Stores) -> list[str]:
    values = seeded(stores)
    stores.codes.issue(TENANT, values[0], Issuance(moment(), ACTOR))
    return values


def _one_code(state: CodeState) -> Callable[[list[str]], dict[str, str]]:
    return lambda values: {values[0]: state}


def _is(value_index: int, state: CodeState) -> Callable[[Any, list[str]], bool]:
    return lambda code, values: code.value == values[value_index] and code.state is state


def _claimed(code: Code, values: list[str]) -> bool:
    return code.value in values and code.state is CodeState.ISSUED


KINDS = {
    "claim": Kind(
        "UpdateItem",
        lambda stores: seeded(stores, 5),
        lambda w, v: w.codes.claim(pool(), Issuance(moment(), ACTOR, RECIPIENT)),
        lambda values: {},  # which code is the answer's to say
        _claimed,
    ),
    "claim with a receipt": Kind(
        "TransactWriteItems",
        lambda stores: seeded(stores, 5),
        lambda w, v: w.codes.claim(
            pool(), Issuance(moment(), ACTOR, RECIPIENT, None, receipt("c"))
        ),
        lambda values: {},
        _claimed,
    ),
    "issue by value": Kind(
        "UpdateItem",
        seeded,
        lambda w, v: w.codes.issue(TENANT, v[0], Issuance(moment(), ACTOR, RECIPIENT)),
        _one_code(CodeState.ISSUED),
        _is(0, CodeState.ISSUED),
    ),
    "issue by value with a receipt": Kind(
        "TransactWriteItems",
        seeded,
        lambda w, v: w.codes.issue(
            TENANT, v[0], Issuance(moment(), ACTOR, RECIPIENT, None, receipt("i"))
        ),
        _one_code(CodeState.ISSUED),
        _is(0, CodeState.ISSUED),
    ),
    "redeem": Kind(
        "UpdateItem",
        _issue_first,
        lambda w, v: w.codes.redeem(TENANT, v[0], Issuance(moment(), ACTOR, RECIPIENT)),
        _one_code(CodeState.USED),
        _is(0, CodeState.USED),
    ),
    "redeem with a receipt": Kind(
        "TransactWriteItems",
        _issue_first,
        lambda w, v: w.codes.redeem(
            TENANT, v[0], Issuance(moment(), ACTOR, RECIPIENT, None, receipt("r"))
        ),
        _one_code(CodeState.USED),
        _is(0, CodeState.USED),
    ),
    "block": Kind(
        "UpdateItem",
        seeded,
        lambda w, v: w.codes.block(TENANT, v[0], moment(), ACTOR),
        _one_code(CodeState.BLOCKED),
        _is(0, CodeState.BLOCKED),
    ),
    "create and issue": Kind(
        "TransactWriteItems:add",
        lambda stores: ["CREATED-1"],
        lambda w, v: w.codes.create_issued(
            pool(), NewCode("spring", v[0]), Issuance(moment(), ACTOR, RECIPIENT)
        ),
        _one_code(CodeState.ISSUED),
        _is(0, CodeState.ISSUED),
    ),
    "create and issue with a receipt": Kind(
        "TransactWriteItems",
        lambda stores: ["CREATED-2"],
        lambda w, v: w.codes.create_issued(
            pool(),
            NewCode("spring", v[0]),
            Issuance(moment(), ACTOR, RECIPIENT, None, receipt("n")),
        ),
        _one_code(CodeState.ISSUED),
        _is(0, CodeState.ISSUED),
    ),
}


def _landed_once(stores: Stores, kind: Kind, values: list[str], answer: Any) -> None:
    """The table holds exactly the change the answer reports (for a claim: its one code)."""
    changed = {value: item["state"]["S"] for value, item in issued(stores).items()}
    assert changed == (kind.changed(values) or {answer.value: CodeState.ISSUED})


@pytest.mark.parametrize("name", list(KINDS))
def test_given_a_write_landed_and_its_answer_was_dropped_once_then_it_is_answered_as_its_success(
    stores: Stores, faulty: FaultyStores, name: str
) -> None:
    kind = KINDS[name]
    values = kind.prepare(stores)
    injector = FaultInjector(SEED, planned={kind.point: list(ONCE)}, tally=False)
    writer = faulty(injector)

    answer = kind.write(writer, values)

    assert injector.injected[(kind.point, DROPPED)] == 1  # the fault struck the write
    assert kind.answered(answer, values)
    _landed_once(stores, kind, values, answer)


@pytest.mark.parametrize("name", list(KINDS))
def test_given_a_write_landed_and_every_answer_was_dropped_then_the_outcome_is_unknown_not_refused(
    stores: Stores, faulty: FaultyStores, name: str
) -> None:
    kind = KINDS[name]
    values = kind.prepare(stores)
    before = {value: item["state"]["S"] for value, item in issued(stores).items()}
    injector = FaultInjector(SEED, planned={kind.point: list(EVERY_ATTEMPT)}, tally=False)
    writer = faulty(injector)

    with pytest.raises(StoreUnavailable):
        kind.write(writer, values)
    injector.active = False

    after = {value: item["state"]["S"] for value, item in issued(stores).items()}
    made = {value: state for value, state in after.items() if before.get(value) != state}
    assert len(made) == 1  # the one change the request made; never two
    if kind.changed(values):
        assert made == kind.changed(values)
    else:  # a claim: one code, issued to the request's recipient
        (item,) = [issued(stores)[value] for value in made]
        assert item["issued_to_id"]["S"] == RECIPIENT.identifier


@pytest.mark.parametrize("size", [40, STAGED], ids=["one transaction", f"staged {STAGED}"])
@pytest.mark.parametrize("faults", [ONCE, EVERY_ATTEMPT], ids=["once", "every attempt"])
def test_given_a_bulk_add_landed_and_its_answers_were_dropped_then_it_is_its_success_or_unknown(
    stores: Stores, faulty: FaultyStores, size: int, faults: list[str]
) -> None:
    point = "TransactWriteItems:add" if size == 40 else "TransactWriteItems:stage"
    injector = FaultInjector(SEED, planned={point: list(faults)}, tally=False)
    writer = faulty(injector, BULK_WRITE_CONCURRENCY=1)
    batch = new_codes("spring", size, "BULK")
    values = [code.value for code in batch]

    if faults is ONCE:
        added = writer.codes.add(TENANT, {"spring": pool()}, batch, ACTOR)
        assert [code.value for code in added] == values
        assert {v for v in values if stores.codes.get(TENANT, v)} == set(values)
        return
    with pytest.raises(StoreUnavailable):
        writer.codes.add(TENANT, {"spring": pool()}, batch, ACTOR)
    injector.active = False
    # Told "unknown", the caller sees all of the add or none of it, and may add it again.
    found = {v for v in values if stores.codes.get(TENANT, v)}
    assert found in (set(), set(values))


@pytest.mark.parametrize("faults", [ONCE, EVERY_ATTEMPT], ids=["once", "every attempt"])
def test_given_a_delete_landed_and_its_answers_were_dropped_then_it_is_its_success_or_unknown(
    stores: Stores, faulty: FaultyStores, faults: list[str]
) -> None:
    added = stores.codes.add(TENANT, {"spring": pool()}, new_codes("spring", 3, "GONE"), ACTOR)
    injector = FaultInjector(SEED, planned={"TransactWriteItems": list(faults)}, tally=False)
    writer = faulty(injector)
    ids = [code.uuid for code in added]

    if faults is ONCE:
        writer.codes.delete(TENANT, ids, ACTOR)
    else:
        with pytest.raises(StoreUnavailable):
            writer.codes.delete(TENANT, ids, ACTOR)
        injector.active = False
        writer.codes.delete(TENANT, ids, ACTOR)  # the caller's retry: deletes are idempotent

    assert all(stores.codes.get(TENANT, code.value).is_deleted for code in added)  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", [StepKind.FROM_POOL, StepKind.BY_VALUE_CREATE])
def test_given_every_answer_was_dropped_then_a_retry_with_the_same_key_answers_what_happened(
    stores: Stores, faulty: FaultyStores, kind: StepKind
) -> None:
    seeded(stores, 5)
    step = Step(
        kind,
        TENANT,
        "maestra",
        None if kind is StepKind.FROM_POOL else "KEYED-1",
        "spring-ext",
        Window(),
        Issuance(moment(), ACTOR, RECIPIENT, None, receipt(f"retry-{kind}")),
    )
    injector = FaultInjector(SEED, planned={"TransactWriteItems": list(EVERY_ATTEMPT)}, tally=False)
    with pytest.raises(StoreUnavailable):
        perform_step(faulty(injector).services(), step)
    injector.active = False

    retried = perform_step(stores.services(), step)

    (value,) = issued(stores)
    assert retried.refusal is None
    assert retried.replayed
    assert retried.code is not None
    assert retried.code.value == value


@pytest.mark.parametrize(
    "lost", [[DROPPED], [None, None, DROPPED]], ids=["the mark", "the new rule"]
)
def test_given_the_answer_to_a_case_switch_s_write_was_lost_then_the_switch_took_effect(
    stores: Stores, faulty: FaultyStores, lost: list[str | None]
) -> None:
    """The switch's mark, or the new rule, landed and its answer was lost: the retry's
    condition fails on the switch's own write, which must not be taken for a rival's (and,
    at the end, undo the pointers the codes held before the switch are reached by)."""
    stores.codes.add(TENANT, {"spring": pool()}, [NewCode("spring", "Mixed-1")], ACTOR)
    # PutItems in order: the mark, the pointer of Mixed-1, the new rule.
    injector = FaultInjector(SEED, planned={"PutItem": list(lost)}, tally=False)
    writer = faulty(injector)

    put_tenant(writer.catalog, writer.codes, tenant(TENANT, case_sensitive=False), NO_WAIT)

    assert injector.injected[("PutItem", DROPPED)] == 1
    after = stores.fresh()
    assert after.catalog.get_tenant(TENANT) == tenant(TENANT, case_sensitive=False)
    assert after.codes.get(TENANT, "MIXED-1").value == "Mixed-1"  # type: ignore[union-attr]
