"""Injected DynamoDB faults against DynamoDB Local (issue 9, item 5).

Faults are injected with botocore event hooks on a client configured as the functions' own
(``promo.store.client``: standard retries, 4 attempts, short timeouts), at every store call kind
(GetItem, Query, UpdateItem, PutItem, TransactWriteItems, BatchGetItem, BatchWriteItem,
DeleteItem):

- ``throttled``: a synthetic 400 ThrottlingException / ProvisionedThroughputExceededException /
  RequestLimitExceeded (or, for TransactWriteItems, a TransactionCanceledException whose reason is
  ThrottlingError) answered before the request reaches DynamoDB;
- ``timed out`` / ``refused``: ReadTimeoutError / EndpointConnectionError, nothing sent;
- ``dropped``: the request is sent and DynamoDB applies it, then the connection closes
  (ConnectionClosedError) and botocore retries it;
- ``answer lost``: the call succeeded, but the store gets a ReadTimeoutError instead of its answer
  (raised from ``after-call``, past botocore's retries): the hard case.

botocore's own retries absorb many of these; the counts below are of faults injected, whether
botocore, the store or the caller's retry recovered from them. The invariants: no code issued
twice, no code lost, no bulk add half-visible.

A bulk add whose decisive write (the commit record) landed but whose answer was lost reports
success: the targeted tests pin that down, and the randomised ones strike that point too.
"""

import contextlib
import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any, Protocol

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.config import Config
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.httpsession import URLLib3Session
from botocore.retries import standard

from promo.domain import clock
from promo.domain.errors import (
    ConcurrentChange,
    DuplicateValues,
    NoCodeAvailable,
    StoreUnavailable,
)
from promo.domain.models import CodeState, Issuance, NewCode, Receipt, Recipient, StepKind, Window
from promo.services import Services
from promo.services.issuing import Step, StepOutcome, perform_step
from promo.services.listing import CodeQuery, list_codes
from promo.store.client import _CONFIG as FUNCTION_CLIENT_CONFIG
from promo.store.codes import visibility
from promo.store.codes.bulk_staging import BulkAdds
from promo.store.codes.visibility import Stage
from promo.store.table import ConditionFailed
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.tables import Stores
from tools.dynamodb_local import DynamoDBLocal

pytestmark = pytest.mark.integration

SEED = 20250909
CALLERS = 32
TRANSACTIONS_PER_CALLER = 6
POOL_SIZE = 160
# A bulk add this large is staged (more than 50 codes) in two transactions, then committed.
STAGED = 120
# Every caller gives up (and the test fails) if a transaction gets no answer in this long.
PATIENCE_SECONDS = 45.0
# botocore's throttling backoff reaches seconds; scaled down so the file keeps its time budget.
# Retry decisions (which errors, how many attempts, the retry quota) stay botocore's own.
BACKOFF_SCALE = 0.05

THROTTLED = "throttled"
TIMED_OUT = "timed out"
REFUSED = "refused"
DROPPED = "dropped"
ANSWER_LOST = "answer lost"
FAULTS = (THROTTLED, TIMED_OUT, REFUSED, DROPPED, ANSWER_LOST)
EVERY_FAULT = "*"
STORE_CALLS = (
    "GetItem",
    "Query",
    "UpdateItem",
    "PutItem",
    "TransactWriteItems",
    "BatchGetItem",
    "BatchWriteItem",
    "DeleteItem",
)
_THROTTLING = (
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
)

# Totals over the module, printed at its end.
_TOTALS: Counter[tuple[str, str]] = Counter()


# ---------------------------------------------------------------------- the fault injector


def call_point(operation: str, body: dict[str, Any]) -> str:
    """The store step a request is: its operation, refined for the bulk add's writes."""
    if operation == "PutItem" and body.get("Item", {}).get("sk", {}).get("S") == "BATCH":
        return "PutItem:commit"
    if operation == "TransactWriteItems":
        actions = body.get("TransactItems", [])
        puts = [action["Put"]["Item"] for action in actions if "Put" in action]
        if puts and len(puts) == len(actions) and all(p["sk"]["S"] in ("CODE", "ID") for p in puts):
            staged = any("staged_batch" in put for put in puts)
            return "TransactWriteItems:stage" if staged else "TransactWriteItems:add"
    return operation


def _json_body(request: AWSPreparedRequest) -> dict[str, Any]:
    body = request.body
    loaded: dict[str, Any] = json.loads(body if isinstance(body, str | bytes) else b"{}")
    return loaded


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _error_response(request: AWSPreparedRequest, error: dict[str, Any]) -> AWSResponse:
    body = json.dumps(error).encode()
    headers = HTTPHeaders()
    headers["content-type"] = "application/x-amz-json-1.0"
    headers["content-length"] = str(len(body))
    headers["x-amzn-requestid"] = "injected-fault"
    return AWSResponse(request.url, 400, headers, _Body(body))


@dataclass
class FaultInjector:
    """Faults at a seeded random ``rate`` per request attempt, and ``planned`` ones per call point
    (consumed in order, before any random draw). ``spared``: (point, fault) never injected."""

    seed: int
    rate: float = 0.0
    spared: frozenset[tuple[str, str]] = frozenset()
    planned: dict[str, list[str | None]] = field(default_factory=dict)  # None: no fault
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    active: bool = True
    tally: bool = True  # counted in the module's "survived" totals

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._http = URLLib3Session()

    def install(self, client: Any) -> None:
        client.meta.events.register("before-send.dynamodb", self._before_send)
        client.meta.events.register("after-call.dynamodb", self._after_call)

    def by_operation(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for (point, _), count in self.injected.items():
            totals[point.split(":")[0]] += count
        return totals

    def table(self) -> str:
        lines = [f"{'store call':<28}" + "".join(f"{fault:>13}" for fault in FAULTS)]
        for point in sorted({point for point, _ in self.injected}):
            counts = "".join(f"{self.injected[point, fault]:>13}" for fault in FAULTS)
            lines.append(f"{point:<28}{counts}")
        lines.append(f"{'total':<28}{sum(self.injected.values()):>13}")
        return "\n".join(lines)

    def _draw(self, point: str) -> tuple[str | None, int]:
        with self._lock:
            if not self.active:
                return None, 0
            self.attempts[point] += 1
            queue = self.planned.get(point)
            if queue:
                return queue.pop(0), 0
            if self._random.random() >= self.rate:
                return None, 0
            fault = self._random.choice(FAULTS)
            variant = self._random.randrange(4)
            if (point, fault) in self.spared or (point, EVERY_FAULT) in self.spared:
                return None, 0
            return fault, variant

    def _count(self, point: str, fault: str) -> None:
        with self._lock:
            self.injected[point, fault] += 1
            if self.tally:
                _TOTALS[point, fault] += 1

    def _before_send(
        self, request: AWSPreparedRequest, event_name: str, **_: Any
    ) -> AWSResponse | None:
        self._local.lose = None
        operation = event_name.rsplit(".", 1)[-1]
        if operation not in STORE_CALLS:
            return None
        point = call_point(operation, _json_body(request))
        fault, variant = self._draw(point)
        if fault is None:
            return None
        if fault == ANSWER_LOST:  # let it through; the answer is lost in after-call
            self._local.lose = point
            return None
        self._count(point, fault)
        if fault == THROTTLED:
            return self._throttled(request, operation, variant)
        if fault == TIMED_OUT:
            raise ReadTimeoutError(endpoint_url=request.url)
        if fault == REFUSED:
            raise EndpointConnectionError(endpoint_url=request.url)
        self._http.send(request)  # DROPPED: DynamoDB applies it, the client never hears back
        raise ConnectionClosedError(endpoint_url=request.url)

    def _throttled(self, request: AWSPreparedRequest, operation: str, variant: int) -> AWSResponse:
        if operation == "TransactWriteItems" and variant == 3:
            actions = _json_body(request)["TransactItems"]
            reasons = [{"Code": "ThrottlingError", "Message": "Throughput exceeds the limit"}]
            reasons += [{"Code": "None"}] * (len(actions) - 1)
            return _error_response(
                request,
                {
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "Message": "Transaction cancelled [ThrottlingError]",
                    "CancellationReasons": reasons,
                },
            )
        code = _THROTTLING[variant % len(_THROTTLING)]
        return _error_response(
            request,
            {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"},
        )

    def _after_call(self, http_response: AWSResponse, **_: Any) -> None:
        point = getattr(self._local, "lose", None)
        self._local.lose = None
        if point is None or http_response.status_code >= 300:
            return
        self._count(point, ANSWER_LOST)
        raise ReadTimeoutError(endpoint_url=http_response.url)


# ---------------------------------------------------------------------- fixtures and helpers


class FaultyStores(Protocol):
    def __call__(self, injector: FaultInjector, **settings: object) -> Stores: ...


@pytest.fixture(scope="module", autouse=True)
def _report_totals(request: pytest.FixtureRequest) -> Iterator[None]:
    """The module's fault counts, printed to the terminal when it ends (the issue's note)."""
    yield
    if not _TOTALS:
        return
    by_call: Counter[str] = Counter()
    by_fault: Counter[str] = Counter()
    for (point, fault), count in _TOTALS.items():
        by_call[point.split(":")[0]] += count
        by_fault[fault] += count
    lines = [
        f"injected DynamoDB faults, all survived: {sum(_TOTALS.values())}",
        "  per store call: " + ", ".join(f"{k} {v}" for k, v in sorted(by_call.items())),
        "  per fault:      " + ", ".join(f"{k} {v}" for k, v in sorted(by_fault.items())),
    ]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + "\n".join(lines))


@pytest.fixture
def stores(local_stores: Stores) -> Stores:
    """The fault-free view: setup and every final check go through it."""
    local_stores.catalog.put_tenant(tenant("acme"))
    local_stores.catalog.put_pool(pool(shard_count=4))
    return local_stores


@pytest.fixture
def faulty(
    stores: Stores, dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch
) -> FaultyStores:
    """Stores over the same table through a client configured as the functions' own, with
    ``injector`` hooked into it."""
    real_delay = standard.ExponentialBackoff.delay_amount

    def quick_delay(self: standard.ExponentialBackoff, context: Any) -> float:
        return float(real_delay(self, context)) * BACKOFF_SCALE

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", quick_delay)

    def make(injector: FaultInjector, **settings: object) -> Stores:
        client = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=dynamodb_local.endpoint,
            config=FUNCTION_CLIENT_CONFIG.merge(Config(max_pool_connections=CALLERS * 2)),
        )
        injector.install(client)
        return Stores(client, stores.table_name, **settings)

    return make


def services_of(stores: Stores) -> Services:
    return stores.services()


def all_items(stores: Stores) -> list[dict[str, Any]]:
    return list(stores.table.paginate(stores.table.scan, ConsistentRead=True))


def code_items(stores: Stores) -> dict[str, dict[str, Any]]:
    return {i["value"]["S"]: i for i in all_items(stores) if i["sk"]["S"] == "CODE"}


def visible(stores: Stores, values: list[str], pool_id: str = "spring") -> set[str]:
    """The values a reader sees: by value, and in the pool's listing."""
    listed = {code.value for _, code in stores.codes.list("acme", [pool_id])} & set(values)
    by_value = {value for value in values[::3] if stores.codes.get("acme", value) is not None}
    assert by_value == listed & set(values[::3])  # the two read paths agree
    return listed


def visible_through_faults(stores: Stores, values: list[str], pool_id: str) -> set[str]:
    """What a reader retrying each failed read sees: the listing, and a sample by value."""
    listed = patiently(lambda: {code.value for _, code in stores.codes.list("acme", [pool_id])})
    assert listed <= patiently(partial(stores.codes.existing_values, "acme", values))
    for value in values[::8]:
        found = patiently(partial(stores.codes.get, "acme", value))
        assert (found is not None) == (value in listed)  # the two read paths agree
    return listed & set(values)


def batch_outcomes(stores: Stores) -> dict[str, str]:
    """Every bulk add's record: batch id → COMMITTED or ABORTED."""
    return {
        i["pk"]["S"].rsplit("#", 1)[1]: i["outcome"]["S"]
        for i in all_items(stores)
        if i["sk"]["S"] == "BATCH"
    }


def claim_all(stores: Stores, count: int) -> set[str]:
    """Claim ``count`` codes of the spring pool, then check it is empty; the values claimed."""
    claimed = {stores.codes.claim(pool(), Issuance(moment(), ACTOR)).value for _ in range(count)}
    assert len(claimed) == count
    with pytest.raises(NoCodeAvailable):
        stores.codes.claim(pool(), Issuance(moment(), ACTOR))
    return claimed


def patiently[T](read: Callable[[], T]) -> T:
    """A reader that retries what DynamoDB failed, as a client would."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            return read()
        except StoreUnavailable:
            assert time.monotonic() < deadline, "a read never got through the faults"


def report(capsys: pytest.CaptureFixture[str], title: str, injector: FaultInjector) -> None:
    with capsys.disabled():
        print(f"\n{title}\n{injector.table()}")


# ---------------------------------------------------------------------- 32 callers issuing


@dataclass(frozen=True, slots=True)
class Answer:
    transaction: str
    value: str | None  # the code the caller's final answer carries, if it was issued
    refusal: str | None
    replayed: bool
    failed_attempts: int


def issue_step(transaction: str, value: str | None) -> Step:
    """A Maestra issue request with a transactionId, as the sync handler builds it."""
    kind = StepKind.FROM_POOL if value is None else StepKind.BY_VALUE_CREATE
    return Step(
        kind=kind,
        tenant_id="acme",
        protocol="maestra",
        value=value,
        pool_alias="spring-ext",
        validity=Window(),
        issuance=Issuance(
            at=clock.now(),
            actor="maestra:faults",
            recipient=Recipient("maestra.webSiteUserId", transaction),
            receipt=Receipt(
                f"maestra#faults#{kind}",
                transaction,
                hashlib.sha256(f"{kind}|{value}|{transaction}".encode()).hexdigest(),
            ),
        ),
    )


def until_answered(svc: Services, step: Step) -> Answer:
    """Send the same request (same transactionId) until it is answered, like a Mindbox client."""
    assert step.issuance.receipt is not None
    deadline = time.monotonic() + PATIENCE_SECONDS
    failed = 0
    while True:
        try:
            outcome: StepOutcome = perform_step(svc, step)
        except StoreUnavailable:
            failed += 1
            assert time.monotonic() < deadline, f"{step.issuance.receipt.key} never got an answer"
            time.sleep(0.002)
            continue
        issued = outcome.refusal is None and outcome.code is not None
        return Answer(
            step.issuance.receipt.key,
            outcome.code.value if issued and outcome.code else None,
            type(outcome.refusal).__name__ if outcome.refusal else None,
            outcome.replayed,
            failed,
        )


def test_given_faults_at_every_store_call_while_32_callers_issue_then_no_code_is_issued_twice_or_lost(
    stores: Stores, faulty: FaultyStores, capsys: pytest.CaptureFixture[str]
) -> None:
    the_pool = pool(shard_count=4)
    stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", POOL_SIZE, "POOL"), ACTOR)
    # Besides the random faults, the first 3 x CALLERS issue-transaction attempts all lose their
    # answer. A store call makes 3 attempts, and at most CALLERS calls are in flight, holding at
    # most 2 lost answers each when the plan runs out; so at least CALLERS / 3 calls lose all 3,
    # and their callers must be answered by an idempotent replay of their transactionId.
    lost_answers: list[str | None] = [ANSWER_LOST] * (3 * CALLERS)
    injector = FaultInjector(SEED, rate=0.15, planned={"TransactWriteItems": lost_answers})
    shared = faulty(injector)
    start = threading.Barrier(CALLERS + 1)

    def caller(index: int) -> list[Answer]:
        mine = shared.fresh()  # its own caches, as another Lambda instance
        svc = services_of(mine)
        start.wait()
        answers = []
        for number in range(TRANSACTIONS_PER_CALLER):
            transaction = f"tx-{index:02d}-{number}"
            # Every third request creates a code by value; callers 2k and 2k+1 race for it.
            value = f"DUO-{number}-{index // 2:02d}" if number % 3 == 2 else None
            answers.append(until_answered(svc, issue_step(transaction, value)))
        return answers

    def adder() -> list[tuple[list[str], str]]:
        """Bulk adds to the same pool meanwhile: staged (120) and one transaction (30)."""
        mine = shared.fresh()
        start.wait()
        outcomes = []
        for prefix, size in (("LATE-A", 120), ("LATE-B", 30), ("LATE-C", 120)):
            batch = new_codes("spring", size, prefix)
            try:
                mine.codes.add("acme", {"spring": the_pool}, batch, ACTOR)
                outcome = "added"
            except StoreUnavailable:
                outcome = "failed"
            outcomes.append(([code.value for code in batch], outcome))
        return outcomes

    with ThreadPoolExecutor(CALLERS + 1) as executor:
        adding = executor.submit(adder)
        calling = [executor.submit(caller, index) for index in range(CALLERS)]
        answers = [answer for future in calling for answer in future.result()]
        added = adding.result()
    injector.active = False

    issued_by = {a.transaction: a.value for a in answers if a.value is not None}
    in_answers = list(issued_by.values())
    items = code_items(stores)
    issued_items = {v: item for v, item in items.items() if item["state"]["S"] == "ISSUED"}
    receipts = {
        i["pk"]["S"].rsplit("#", 1)[1]: i["value"]["S"]
        for i in all_items(stores)
        if i["sk"]["S"] == "RECEIPT"
    }

    assert len(answers) == CALLERS * TRANSACTIONS_PER_CALLER  # everyone got a final answer
    # No code issued twice: no two transactions were answered with the same code.
    assert len(set(in_answers)) == len(in_answers)
    # No code lost: every ISSUED code is in exactly the answer of the transaction it records as
    # its recipient, and the number of ISSUED codes is the number of successful transactions.
    assert set(issued_items) == set(in_answers)
    assert {v: i["issued_to_id"]["S"] for v, i in issued_items.items()} == {
        value: transaction for transaction, value in issued_by.items()
    }
    # Each transaction's receipt names the code of its answer; no receipt without one.
    assert receipts == issued_by
    # Findable through the store, recorded against its recipient.
    for transaction, value in issued_by.items():
        found = stores.codes.get("acme", value)
        assert found is not None
        assert found.issued_to == Recipient("maestra.webSiteUserId", transaction)
    # Claims never ran dry, and each raced value went to exactly one of its two callers.
    from_pool = [a for a in answers if int(a.transaction.rsplit("-", 1)[1]) % 3 != 2]
    assert all(a.value is not None for a in from_pool)
    raced = [a for a in answers if a not in from_pool]
    assert Counter(a.refusal for a in raced) == {
        None: len(raced) // 2,
        "NotAvailableForIssue": len(raced) // 2,
    }
    assert {v for v in in_answers if v.startswith("DUO-")} == {
        f"DUO-{n}-{pair:02d}" for n in (2, 5) for pair in range(CALLERS // 2)
    }
    # The meanwhile bulk adds: each wholly visible if it succeeded, wholly invisible if not.
    for values, outcome in added:
        seen = visible(stores, values)
        assert seen == (set(values) if outcome == "added" else set()), outcome
    # The faults really happened, at every call kind of these paths, and callers had to retry.
    assert {"GetItem", "Query", "UpdateItem", "TransactWriteItems"} <= set(injector.by_operation())
    assert injector.injected[("TransactWriteItems", ANSWER_LOST)] > 0  # the hard case
    assert sum(a.failed_attempts for a in answers) > 0
    assert sum(a.replayed for a in answers) >= CALLERS // 3  # answered by an idempotent retry

    report(
        capsys,
        f"32 callers, {len(answers)} transactions ({sum(a.failed_attempts for a in answers)}"
        f" failed attempts retried, {sum(a.replayed for a in answers)} answered by replay,"
        f" {len(issued_items)} codes issued); bulk adds meanwhile: "
        + ", ".join(outcome for _, outcome in added),
        injector,
    )


def test_given_lost_answers_without_a_transaction_id_then_every_issued_code_is_recorded_against_its_recipient(
    stores: Stores, faulty: FaultyStores, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without an idempotency key a lost answer cannot be replayed: the caller's retry is a new
    request. The code the lost answer carried is still issued to the request's recipient only,
    so it is findable and never handed to anyone else."""
    the_pool = pool(shard_count=4)
    stores.codes.add("acme", {"spring": the_pool}, new_codes("spring", 120, "BARE"), ACTOR)
    injector = FaultInjector(SEED + 1, rate=0.2)
    shared = faulty(injector)

    def caller(index: int) -> list[tuple[str, str]]:
        mine = shared.fresh()
        answers = []
        for number in range(2):
            recipient = Recipient("crm.contact", f"r-{index:02d}-{number}")
            deadline = time.monotonic() + PATIENCE_SECONDS
            while True:
                try:
                    code = mine.codes.claim(the_pool, Issuance(moment(), ACTOR, recipient))
                    break
                except StoreUnavailable:
                    assert time.monotonic() < deadline
            answers.append((recipient.identifier, code.value))
        return answers

    with ThreadPoolExecutor(CALLERS) as executor:
        answers = [a for result in executor.map(caller, range(CALLERS)) for a in result]
    injector.active = False

    issued = {v: i for v, i in code_items(stores).items() if i["state"]["S"] == "ISSUED"}
    answered = [value for _, value in answers]
    recipients = {recipient for recipient, _ in answers}

    assert len(set(answered)) == len(answered) == CALLERS * 2  # none handed out twice
    for recipient, value in answers:  # each answer's code is recorded against its recipient
        found = stores.codes.get("acme", value)
        assert found is not None
        assert found.issued_to == Recipient("crm.contact", recipient)
    # Codes whose answer was lost are still recorded against the recipient that asked.
    assert {item["issued_to_id"]["S"] for item in issued.values()} == recipients
    assert set(answered) <= set(issued)
    assert (
        injector.injected[("UpdateItem", ANSWER_LOST)] + injector.injected[("UpdateItem", DROPPED)]
        > 0
    )

    report(
        capsys,
        f"claims without a transactionId: {len(answered)} answered,"
        f" {len(issued) - len(answered)} issued to their recipient with the answer lost",
        injector,
    )


# ---------------------------------------------------------------------- bulk adds under faults


@pytest.mark.parametrize(
    ("size", "rounds"), [(40, 8), (STAGED, 6)], ids=["one transaction", f"staged {STAGED}"]
)
def test_given_faults_at_every_store_call_then_each_bulk_add_is_all_or_nothing(
    stores: Stores,
    faulty: FaultyStores,
    capsys: pytest.CaptureFixture[str],
    size: int,
    rounds: int,
) -> None:
    existing = stores.codes.add("acme", {"spring": pool()}, new_codes("spring", 6, "OLD"), ACTOR)
    # The id counter is called once an add, too few times for the random draws to be sure to
    # strike it: its first call is planned to be struck.
    injector = FaultInjector(SEED + size, rate=0.2, planned={"UpdateItem": [DROPPED]})
    writer = faulty(injector, BULK_WRITE_CONCURRENCY=1)  # one thread: the same faults every run
    outcomes: Counter[str] = Counter()

    for round_ in range(rounds):
        # A pool per round keeps each listing to that round's codes.
        the_pool = pool(pool_id=f"round{round_}", offer_id=100 + round_)
        stores.catalog.put_pool(the_pool)
        batch = new_codes(the_pool.pool_id, size, f"R{round_}-")
        if round_ % 3 == 2:  # collides with codes already there: refused and rolled back
            batch = batch[:-2] + [NewCode(the_pool.pool_id, c.value) for c in existing[:2]]
        new_values = [c.value for c in batch if not c.value.startswith("OLD")]
        named: list[str] = []
        try:
            writer.codes.add("acme", {the_pool.pool_id: the_pool}, batch, ACTOR)
            outcome = "added"
        except DuplicateValues as refused:
            outcome = "refused"
            named = refused.values
        except StoreUnavailable:
            outcome = "failed"
        outcomes[outcome] += 1

        # Readers through the faults see what fault-free readers see.
        if outcome == "refused":  # exactly the values that exist, none of the new ones
            assert named == sorted(c.value for c in existing[:2])
        seen_under_faults = visible_through_faults(writer, new_values, the_pool.pool_id)
        injector.active = False
        seen = visible(stores, new_values, the_pool.pool_id)
        if outcome == "added":
            assert round_ % 3 != 2
            assert seen == set(new_values)
            assert stores.codes.existing_values("acme", new_values) == set(new_values)
        else:
            assert seen == set()
        assert seen_under_faults == seen
        injector.active = True

    injector.active = False
    assert outcomes["added"] > 0  # the faults did not simply stop every add
    # Every staged code left behind is visible exactly when its batch's record says committed.
    outcomes_of = batch_outcomes(stores)
    for value, item in code_items(stores).items():
        if "staged_batch" in item:
            committed = outcomes_of.get(item["staged_batch"]["S"]) == "COMMITTED"
            assert (stores.codes.get("acme", value) is not None) == committed
    kinds = {"UpdateItem", "TransactWriteItems", "BatchGetItem", "GetItem"}
    if size > 50:  # id pointers of the staged adds, and their rollbacks
        kinds |= {"BatchWriteItem"}
    assert kinds <= set(injector.by_operation())

    report(capsys, f"bulk adds of {size} under faults: {dict(outcomes)}", injector)


@pytest.mark.parametrize(
    ("size", "point", "faults"),
    [
        (40, "TransactWriteItems:add", [DROPPED]),
        (40, "TransactWriteItems:add", [THROTTLED, TIMED_OUT, REFUSED]),
        (40, "UpdateItem", [DROPPED]),
        (STAGED, "TransactWriteItems:stage", [DROPPED]),
        (STAGED, "BatchWriteItem", [DROPPED]),
        (STAGED, "PutItem:commit", [THROTTLED, TIMED_OUT]),
    ],
    ids=[
        "single transaction applied, answer dropped",
        "single transaction refused thrice",
        "id counter applied, answer dropped",
        "stage applied, answer dropped",
        "id pointers applied, answer dropped",
        "commit throttled then timed out",
    ],
)
def test_given_a_fault_botocore_retries_then_the_bulk_add_succeeds_and_every_code_is_visible(
    stores: Stores, faulty: FaultyStores, size: int, point: str, faults: list[str]
) -> None:
    injector = FaultInjector(SEED, planned={point: list(faults)})
    writer = faulty(injector, BULK_WRITE_CONCURRENCY=1)
    batch = new_codes("spring", size, "RETRIED")

    added = writer.codes.add("acme", {"spring": pool()}, batch, ACTOR)

    values = [code.value for code in batch]
    assert sum(count for (at, _), count in injector.injected.items() if at == point) == len(faults)
    assert [code.value for code in added] == values
    assert visible(stores, values) == set(values)


# The add's decisive write (its one transaction, or a staged batch's commit) landed, and the
# writer never heard so: what readers see, and what the writer is told.
DECISIVE_WRITE_LANDED = pytest.mark.parametrize(
    ("size", "point", "faults"),
    [
        (40, "TransactWriteItems:add", [ANSWER_LOST]),
        (STAGED, "PutItem:commit", [ANSWER_LOST]),
        (STAGED, "PutItem:commit", [DROPPED]),
    ],
    ids=[
        "single transaction applied, answer lost",
        "commit applied, answer lost",
        "commit applied, answer dropped, botocore retry refused",
    ],
)


@DECISIVE_WRITE_LANDED
def test_given_the_decisive_write_landed_then_readers_see_every_code(
    stores: Stores, faulty: FaultyStores, size: int, point: str, faults: list[str]
) -> None:
    """Whatever the writer was told, a committed add is wholly visible, never partly."""
    injector = FaultInjector(SEED, planned={point: list(faults)})
    writer = faulty(injector, BULK_WRITE_CONCURRENCY=1)
    batch = new_codes("spring", size, "LANDED")

    # What the writer is told is the subject of the next test.
    with contextlib.suppress(StoreUnavailable, ConditionFailed):
        writer.codes.add("acme", {"spring": pool()}, batch, ACTOR)

    values = [code.value for code in batch]
    assert sum(injector.injected.values()) == len(faults)
    assert visible(stores, values) == set(values)
    assert claim_all(stores, len(values)) == set(values)


@DECISIVE_WRITE_LANDED
def test_given_the_decisive_write_landed_then_the_add_reports_success(
    stores: Stores, faulty: FaultyStores, size: int, point: str, faults: list[str]
) -> None:
    injector = FaultInjector(SEED, planned={point: list(faults)}, tally=False)
    writer = faulty(injector, BULK_WRITE_CONCURRENCY=1)
    batch = new_codes("spring", size, "LANDED")

    added = writer.codes.add("acme", {"spring": pool()}, batch, ACTOR)

    assert [code.value for code in added] == [code.value for code in batch]


# ---------------------------------------------------------------------- a writer dying mid-add


class WriterDied(Exception):
    """The writer's process ended here (Lambda timeout, out of memory)."""


def test_given_the_writer_dies_while_staging_then_no_code_of_the_batch_is_visible_or_claimable(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Stores(stores.client, stores.table_name, BULK_WRITE_CONCURRENCY=1)
    real_stage = BulkAdds._stage_chunk
    staged_chunks: list[int] = []

    def stage_then_die(self: BulkAdds, chunk: Any, stage: Stage) -> Any:
        if staged_chunks:  # dies once the first chunk is staged
            raise WriterDied
        staged_chunks.append(len(chunk))
        return real_stage(self, chunk, stage)

    monkeypatch.setattr(BulkAdds, "_stage_chunk", stage_then_die)
    batch = new_codes("spring", STAGED, "DEAD")
    values = [code.value for code in batch]

    with pytest.raises(WriterDied):
        writer.codes.add("acme", {"spring": pool()}, batch, ACTOR)
    monkeypatch.setattr(BulkAdds, "_stage_chunk", real_stage)

    staged = {v for v, item in code_items(stores).items() if "staged_batch" in item}
    assert 0 < len(staged) == sum(staged_chunks) < STAGED  # the writer died part-way
    assert visible(stores, values) == set()
    assert all(stores.codes.get_by_number("acme", n) is None for n in range(1, STAGED + 1))
    with pytest.raises(NoCodeAvailable):
        stores.codes.claim(pool(), Issuance(moment(), ACTOR))
    # The staged values stay held until the stage expires: a new add of them is told another
    # add has not finished (retry), not that they are duplicates, which no read would confirm.
    assert stores.codes.existing_values("acme", values) == staged
    assert set(values[:40]) <= staged
    with pytest.raises(ConcurrentChange) as in_flight:
        stores.codes.add("acme", {"spring": pool()}, batch[:40], ACTOR)
    assert not isinstance(in_flight.value, DuplicateValues)
    assert set(in_flight.value.values) == set(values[:40])
    # Past the stage's deadline the add aborts the stage, clears it and goes on.
    expiry = stores.settings.staged_write_expiry_seconds
    later = SimpleNamespace(time=lambda: time.time() + expiry + 1)
    monkeypatch.setattr(visibility, "time", later)
    stores.codes.add("acme", {"spring": pool()}, batch[:40], ACTOR)
    assert visible(stores, values) == set(values[:40])
    # The cleared stage left no id pointer behind: each pointer of those values names its code.
    uuids = {item["uuid"]["S"] for item in code_items(stores).values()}
    pointers = [
        i for i in all_items(stores) if i["sk"]["S"] == "ID" and i["value"]["S"] in values[:40]
    ]
    assert len(pointers) == 40
    assert all(pointer["uuid"]["S"] in uuids for pointer in pointers)


def test_given_an_undecided_stage_filling_the_shard_then_claims_still_find_the_committed_codes(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staged codes sit in the available index before their commit: claims must read past
    them, not take a page of them for an empty pool."""
    one_shard = pool(shard_count=1)
    stores.catalog.put_pool(one_shard)
    live = stores.codes.add("acme", {"spring": one_shard}, new_codes("spring", 5, "LIVE"), ACTOR)
    writer = Stores(stores.client, stores.table_name, BULK_WRITE_CONCURRENCY=1)
    real_stage = BulkAdds._stage_chunk
    staged_chunks: list[int] = []

    def stage_then_die(self: BulkAdds, chunk: Any, stage: Stage) -> Any:
        if len(staged_chunks) == 3:  # 300 codes staged, never committed
            raise WriterDied
        staged_chunks.append(len(chunk))
        return real_stage(self, chunk, stage)

    monkeypatch.setattr(BulkAdds, "_stage_chunk", stage_then_die)
    with pytest.raises(WriterDied):
        writer.codes.add("acme", {"spring": one_shard}, new_codes("spring", 400, "OPEN"), ACTOR)
    monkeypatch.setattr(BulkAdds, "_stage_chunk", real_stage)

    claimed = {stores.codes.claim(one_shard, Issuance(moment(), ACTOR)).value for _ in live}

    assert claimed == {code.value for code in live}
    with pytest.raises(NoCodeAvailable):
        stores.codes.claim(one_shard, Issuance(moment(), ACTOR))


def test_given_the_writer_dies_right_after_the_commit_then_every_code_is_live_in_every_path(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Stores(stores.client, stores.table_name, BULK_WRITE_CONCURRENCY=1)
    real_commit = BulkAdds._commit

    def commit_then_die(self: BulkAdds, *args: Any) -> bool:
        real_commit(self, *args)
        raise WriterDied

    monkeypatch.setattr(BulkAdds, "_commit", commit_then_die)
    batch = new_codes("spring", STAGED, "COMMITTED")
    values = [code.value for code in batch]

    with pytest.raises(WriterDied):
        writer.codes.add("acme", {"spring": pool()}, batch, ACTOR)
    monkeypatch.setattr(BulkAdds, "_commit", real_commit)

    # Nothing is left to publish: the commit record alone made every staged code real.
    assert all("staged_batch" in item for item in code_items(stores).values())
    assert visible(stores, values) == set(values)
    first = stores.codes.get("acme", values[0])
    assert first is not None
    assert stores.codes.get_by_number("acme", first.number) == first
    issued = stores.codes.issue("acme", values[0], Issuance(moment(), ACTOR))
    redeemed = stores.codes.redeem("acme", values[1], Issuance(moment(), ACTOR))
    assert (issued.state, redeemed.state) == (CodeState.ISSUED, CodeState.USED)
    second = stores.codes.get("acme", values[2])
    assert second is not None
    stores.codes.delete("acme", [second.uuid], ACTOR)
    assert claim_all(stores, STAGED - 3) == set(values[3:])
    # Each code's first change dropped its staging marker.
    assert not any("staged_batch" in item for item in code_items(stores).values())


def test_given_a_reader_aborted_an_expired_stage_then_a_late_commit_loses_and_nothing_is_visible(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Stores(stores.client, stores.table_name, BULK_WRITE_CONCURRENCY=1)
    real_commit = BulkAdds._commit

    def aborted_first(self: BulkAdds, tenant_id: str, batch_id: str, *args: Any) -> bool:
        stores.codes.outcomes.abort(
            tenant_id, batch_id
        )  # a reader that met the stage past its expiry
        return real_commit(self, tenant_id, batch_id, *args)

    monkeypatch.setattr(BulkAdds, "_commit", aborted_first)
    batch = new_codes("spring", STAGED, "LATE")
    values = [code.value for code in batch]

    with pytest.raises(StoreUnavailable):
        writer.codes.add("acme", {"spring": pool()}, batch, ACTOR)

    assert visible(stores, values) == set()
    assert stores.codes.existing_values("acme", values) == set()  # rolled back
    assert set(batch_outcomes(stores).values()) == {"ABORTED"}


# ---------------------------------------------------------------------- readers racing a commit


@pytest.mark.parametrize("reader", ["list", "getAll across tenants"])
def test_given_a_bulk_add_commits_while_an_answer_is_read_then_the_answer_has_all_of_it_or_none(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    """The commit lands after the reader judged its first chunk of items and before its next: an answer
    decides a batch's visibility once, so it holds none of the add (it met the batch
    undecided), never part of it; the next answer holds all of it."""
    size = 1000
    go, committed = threading.Event(), threading.Event()
    real_commit = BulkAdds._commit

    def commit_when_told(self: BulkAdds, *args: Any) -> bool:
        assert go.wait(30)
        try:
            return real_commit(self, *args)
        finally:
            committed.set()

    monkeypatch.setattr(BulkAdds, "_commit", commit_when_told)
    batch = new_codes("spring", size, "RACE")
    values = {code.value for code in batch}
    writer = Stores(stores.client, stores.table_name)
    with ThreadPoolExecutor(1) as executor:
        adding = executor.submit(writer.codes.add, "acme", {"spring": pool()}, batch, ACTOR)
        answer = _answer_racing_the_commit(stores, reader, go, committed, size)
        adding.result()

    assert go.is_set()  # the commit really came mid-answer
    assert answer & values in (set(), values)
    assert answer & values == set()  # met undecided first, so none of it
    assert {c.value for _, c in stores.fresh().codes.list("acme", ["spring"])} >= values


def _answer_racing_the_commit(
    stores: Stores, reader: str, go: threading.Event, committed: threading.Event, size: int
) -> set[str]:
    mine = stores.fresh()
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not code_items(stores):  # the stage is being written
        assert time.monotonic() < deadline
        time.sleep(0.05)
    while len(code_items(stores)) < size:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    real_batch_get = mine.table.batch_get
    calls: list[int] = []

    def commit_before_the_second_chunk(keys: Any, projection: str | None = None) -> list[Any]:
        if not keys or keys[0]["sk"]["S"] != "CODE":  # pools, pointers: not the race
            return real_batch_get(keys, projection)
        if len(calls) == 1:  # the first chunk was read and judged with the batch undecided
            go.set()
            assert committed.wait(30)
            # A code of a later chunk changes first, dropping its staging marker: it is still
            # part of the add the answer met undecided.
            stores.codes.issue("acme", "RACE00000", Issuance(moment(), ACTOR))
        calls.append(len(keys))
        return real_batch_get(keys, projection)

    mine.table.batch_get = commit_before_the_second_chunk  # type: ignore[method-assign]
    if reader == "list":
        return {code.value for _, code in mine.codes.list("acme", ["spring"])}
    query = CodeQuery(["acme", "globex"], None, "mews", None, None, size, None)
    return {code.value for code in list_codes(mine.services(), query).codes}
