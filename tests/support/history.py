"""A history checker (issue 15, item 10): separate processes run the real handlers through a
fault layer, every request and answer is recorded, and the final table is held against the
history.

``run_history`` starts N worker processes (``multiprocessing``, start method "spawn": each is a
new interpreter, as each Lambda instance is). A worker builds its own services with
``bootstrap`` over its own botocore client, configured as the functions' own client
(``promo.store.client._CONFIG``) with a ``FaultInjector`` hooked into it, ``install``s them, and
performs a seeded random mix through the handlers, with HTTP API events as API Gateway sends
them: Mews add (values unique per process; some large enough to be staged, and a 1,000-code add
or two), Maestra ``IssueSpringPromoCode`` (with and without ``transactionId``), CRM.COM
``request_promo_code``, Maestra ``IssuePromoCodeByValue`` and ``RedeemPromoCode``, Mews delete,
SyncTV validate (with the device) and Mews getAll. Every issue and redeem request names a
customer of its own (``webSiteUserId`` / the CRM.COM rewards participant), so the table's
``issued_to_id`` / ``used_by`` says which request changed a code. A Maestra request with a
``transactionId`` answered 5xx is sent once more with the same key, as the service promises is
safe. One worker may be killed (SIGKILL) mid-run, preferably mid bulk add, and replaced.

Each worker writes one JSONL file: a ``sent`` line before each attempt and an ``answer`` line
after it (status, the parsed answer, the faults injected during it). An attempt with no answer
line was in flight when its process was killed: its outcome is unknown.

``check`` holds the final table (a raw scan) against the history:

0. ``incomplete history``: only a process's last attempt may lack its answer (it was killed);
1. ``issued twice``: no two requests were told they were issued the same code;
2. ``untold change``: a code issued to (used by) a request's customer was reported to that
   request, or every attempt of it was told the outcome is unknown (5xx, or no answer); a
   request changes at most one code;
3. ``answer disagrees``: every definite answer agrees with the table: an issue names a code
   issued to its customer, a redeem's code is USED by its customer, an add answered 200 exists
   whole (and one refused does not exist at all), a delete answered ``{}`` deleted its codes
   (and a refused one deleted none), validate's "1" names a code that exists, its -45 no code
   this process had added that is still redeemable at the end (states only move on, so it was
   redeemable then); an add or delete answered 5xx left all of its codes or none;
4. ``partial bulk add``: no getAll answer holds part of an add (a full page's oldest end may cut
   one: that add is passed over).
"""

import json
import multiprocessing
import os
import queue
import random
import signal
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from lxml import etree

SPRING_VOUCHER = "fe568bbd-1ecb-4bb2-bf77-96c3698de20d"  # config/demo.yaml: pool spring
DEMO_ENTERPRISE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
DEMO_DEVICE = "urn:synctv:devices:web:11223344"
MAESTRA_KEY = "demo-maestra-secret-key"
MEWS_AUTH = {
    "ClientToken": "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
    "AccessToken": "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
    "Client": "history 1.0",
}
CRM_LOGIN = {
    "username": "MPAdministrator",
    "password": "demo-crm-password",
    "organisation": "demo",
}
# botocore's backoff after a throttle reaches seconds: scaled down as in test_faults.
BACKOFF_SCALE = 0.05
STAGED_ABOVE = 50  # adds of more codes than this are staged, then committed

ADD = "add"
ISSUE_POOL = "issue from pool"  # Maestra IssueSpringPromoCode, with or without a key
ISSUE_CRM = "issue from pool (CRM.COM)"
ISSUE_VALUE = "issue by value"
REDEEM = "redeem"
DELETE = "delete"
VALIDATE = "validate"
GET_ALL = "getAll"
ISSUES = (ISSUE_POOL, ISSUE_CRM, ISSUE_VALUE)
MIX = {
    ADD: 7,
    ISSUE_POOL: 22,
    ISSUE_CRM: 9,
    ISSUE_VALUE: 15,
    REDEEM: 12,
    DELETE: 5,
    VALIDATE: 25,
    GET_ALL: 5,
}
# Codes per add, and how often: most are one transaction; 60 and 120 are staged, then committed.
ADD_SIZES = {1: 3, 3: 3, 8: 2, 60: 1, 120: 1}

INCOMPLETE = "0 incomplete history"
ISSUED_TWICE = "1 issued twice"
UNTOLD = "2 untold change"
DISAGREES = "3 answer disagrees"
PARTIAL = "4 partial bulk add"
RULES = (INCOMPLETE, ISSUED_TWICE, UNTOLD, DISAGREES, PARTIAL)


@dataclass(frozen=True)
class Plan:
    """What every worker is given (it crosses into spawned processes: plain values only)."""

    endpoint: str
    table_name: str
    directory: str
    seed: int
    fault_rate: float
    seconds: float  # how long workers send, from when every one of them is ready
    large_adds: int = 1  # 1,000-code adds, made by the first workers, one each


# ---------------------------------------------------------------------- the worker


def worker_file(directory: str | Path, proc: int) -> Path:
    return Path(directory) / f"worker-{proc:02d}.jsonl"


def run_worker(plan: Plan, proc: int, quota: int, ready: Any, go: Any, deadline: Any) -> None:
    """A worker process's entry point: its own services; once every worker is ready (``go``),
    ``quota`` operations or as many as it makes before ``deadline`` (a shared time.time())."""
    log = os.open(Path(plan.directory) / f"worker-{proc:02d}.log", os.O_WRONLY | os.O_CREAT)
    os.dup2(log, 1)  # the handlers' log lines go to a file, not the test's terminal
    os.dup2(log, 2)
    try:
        worker = Worker(plan, proc)
        ready.put(proc)
        go.wait()
        worker.run(quota, deadline.value)
    except BaseException:
        traceback.print_exc()
        raise


class Worker:
    def __init__(self, plan: Plan, proc: int) -> None:
        import boto3
        from botocore.retries import standard

        from promo import bootstrap
        from promo.settings import Settings
        from promo.store.client import _CONFIG
        from tests.integration.test_faults import FaultInjector

        real_delay = standard.ExponentialBackoff.delay_amount

        def quick_delay(self: standard.ExponentialBackoff, context: Any) -> float:
            return float(real_delay(self, context)) * BACKOFF_SCALE

        standard.ExponentialBackoff.delay_amount = quick_delay  # type: ignore[method-assign]
        self.plan, self.proc = plan, proc
        self.random = random.Random(f"{plan.seed}-{proc}")
        client = boto3.client(
            "dynamodb", region_name="us-east-1", endpoint_url=plan.endpoint, config=_CONFIG
        )
        self.injector = FaultInjector(
            self.random.randrange(2**32), rate=plan.fault_rate, tally=False
        )
        self.injector.install(client)
        settings = Settings(table_name=plan.table_name, dynamodb_endpoint_url=plan.endpoint)
        bootstrap.install(bootstrap.bootstrap(settings, send=_no_queue, client=client))
        for module in HANDLERS.values():  # imported now, as at a function's cold start
            _handler(module)
        self.out = worker_file(plan.directory, proc).open("a", buffering=1)
        self.seq = 0
        self.crm_token: str | None = None
        # What this process knows of its own codes, to aim its requests.
        self.added: dict[str, str] = {}  # value -> id, from adds answered 200
        self.issued: list[str] = []  # values this process was told it was issued
        self.spent: set[str] = set()  # values it sent a redeem or a delete for
        self.deletable: list[str] = []

    def run(self, quota: int, deadline: float) -> None:
        large = self.proc < self.plan.large_adds
        for done in range(quota):
            if time.time() >= deadline:
                return
            if large and done == 3:
                self.add(1000)
                continue
            if not large and done in RACING_READS:  # read while the 1,000-code adds commit
                self.get_all(400)
                continue
            kind = self.random.choices(list(MIX), weights=list(MIX.values()))[0]
            self.perform(kind)

    def perform(self, kind: str) -> None:
        if kind == ADD:
            sizes = self.random.choices(list(ADD_SIZES), weights=list(ADD_SIZES.values()))
            self.add(sizes[0])
        elif kind == ISSUE_POOL:
            self.issue_from_pool(keyed=self.random.random() < 0.6)
        elif kind == ISSUE_CRM:
            self.issue_crm()
        elif kind == ISSUE_VALUE:
            self.issue_by_value()
        elif kind == REDEEM:
            self.redeem()
        elif kind == DELETE:
            self.delete()
        elif kind == VALIDATE:
            self.validate()
        else:
            self.get_all()

    # ------------------------------------------------------------------ recording

    def attempt(
        self,
        kind: str,
        request: dict[str, Any],
        call: Callable[[], tuple[int, Any]],
        attempt: int = 0,
    ) -> tuple[int, Any]:
        """Record the request, make the call, record its answer; (status, parsed answer)."""
        line = {
            "sent": self.seq,
            "proc": self.proc,
            "op": kind,
            "attempt": attempt,
            "t": round(time.time(), 3),
        }
        self._write({**line, "request": request})
        before = Counter(self.injector.injected)
        try:
            status, answer = call()
        except Exception as failed:  # a handler that raises is API Gateway's 500
            status, answer = 500, {"exception": repr(failed)}
        faults = Counter(self.injector.injected)
        faults.subtract(before)
        self._write(
            {
                "answer": self.seq,
                "proc": self.proc,
                "attempt": attempt,
                "t": round(time.time(), 3),
                "status": status,
                "body": answer,
                "faults": {f"{p}|{f}": n for (p, f), n in faults.items() if n},
            }
        )
        return status, answer

    def _write(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record) + "\n")

    def next_request(self) -> str:
        self.seq += 1
        return customer(self.proc, self.seq)

    # ------------------------------------------------------------------ operations

    def add(self, size: int) -> None:
        self.next_request()
        values = [f"H{self.proc:02d}-{self.seq:05d}-{i:04d}" for i in range(size)]
        body = {
            **MEWS_AUTH,
            "EnterpriseId": DEMO_ENTERPRISE,
            "VoucherCodeParameters": [{"VoucherId": SPRING_VOUCHER, "Value": v} for v in values],
        }
        status, answer = self.attempt(ADD, {"values": values}, lambda: mews("add", body))
        if status == 200:
            for code in answer["VoucherCodes"]:
                self.added[code["Value"]] = code["Id"]
                self.deletable.append(code["Value"])

    def issue_from_pool(self, keyed: bool) -> None:
        who = self.next_request()
        key = f"tx-{who}" if keyed else None
        body = {"customer": {"ids": {"webSiteUserId": who}}}
        request = {"customer": who, "transactionId": key}
        for attempt in range(2 if keyed else 1):
            status, answer = self.attempt(
                ISSUE_POOL,
                request,
                lambda: maestra("IssueSpringPromoCode", body, key),
                attempt,
            )
            if status < 500:
                break
        value = issued_value(ISSUE_POOL, status, answer)
        if value is not None:
            self.issued.append(value)

    def issue_crm(self) -> None:
        who = self.next_request()
        if self.crm_token is None:
            self.crm_token = crm_login()
        if self.crm_token is None:
            return
        body = {
            "token": self.crm_token,
            "promotion_campaign_identifier": {"alternative_code": "BG4"},
            "rewards_participant_identifier": {"number": who},
        }
        status, answer = self.attempt(ISSUE_CRM, {"customer": who}, lambda: crm_request(body))
        if status == 200 and answer["status"]["code"] == "AUTHENTICATION_FAILED":
            self.crm_token = None
        if issued_value(ISSUE_CRM, status, answer):
            self.issued.append(answer["data"]["code"])

    def issue_by_value(self) -> None:
        who = self.next_request()
        fresh = [v for v in self.added if v not in self.spent]
        if fresh and self.random.random() < 0.7:
            value = self.random.choice(fresh)
        else:  # a code of the shared seed, which pool claims race for
            value = f"SEED-{self.random.randrange(SEED_CODES):05d}"
        keyed = self.random.random() < 0.5
        key = f"tx-{who}" if keyed else None
        body = {"customer": {"ids": {"webSiteUserId": who}}, "promoCode": {"ids": {"value": value}}}
        request = {"customer": who, "value": value, "transactionId": key}
        for attempt in range(2 if keyed else 1):
            status, _ = self.attempt(
                ISSUE_VALUE,
                request,
                lambda: maestra("IssuePromoCodeByValue", body, key),
                attempt,
            )
            if status < 500:
                break

    def redeem(self) -> None:
        who = self.next_request()
        candidates = [v for v in [*self.issued, *self.added] if v not in self.spent]
        if not candidates:
            return
        value = self.random.choice(candidates)
        self.spent.add(value)
        keyed = self.random.random() < 0.5
        key = f"tx-{who}" if keyed else None
        body = {
            "customer": {"ids": {"webSiteUserId": who}},
            "promoCode": {"ids": {"value": value}},
            "pointOfContact": f"till-{self.proc}",
        }
        request = {"customer": who, "value": value, "transactionId": key}
        for attempt in range(2 if keyed else 1):
            status, _ = self.attempt(
                REDEEM, request, lambda: maestra("RedeemPromoCode", body, key), attempt
            )
            if status < 500:
                break

    def delete(self) -> None:
        self.next_request()
        live = [v for v in self.deletable if v not in self.spent]
        if not live:
            return
        chosen = self.random.sample(live, min(len(live), self.random.choice([1, 2, 5, 12])))
        self.spent.update(chosen)
        ids = [self.added[v] for v in chosen]
        body = {**MEWS_AUTH, "EnterpriseId": DEMO_ENTERPRISE, "VoucherCodeIds": ids}
        self.attempt(DELETE, {"values": chosen, "ids": ids}, lambda: mews("delete", body))

    def validate(self) -> None:
        self.next_request()
        live = [v for v in self.added if v not in self.spent]
        if not live:
            return
        value = self.random.choice(live)
        self.attempt(VALIDATE, {"value": value}, lambda: synctv_validate(value))

    def get_all(self, count: int | None = None) -> None:
        self.next_request()
        if count is None:  # pages of 1,000 are slow to read: a few per run, smaller ones else
            count = 1000 if self.random.random() < 0.05 else self.random.choice([50, 100, 150])
        body = {**MEWS_AUTH, "VoucherIds": [SPRING_VOUCHER], "Limitation": {"Count": count}}
        self.attempt(GET_ALL, {"count": count}, lambda: mews("getAll", body, listing=True))


# The first operations of the workers that make no 1,000-code add: long getAll answers, which
# the large adds' commits, and the first changes to their codes, land in the middle of.
RACING_READS = range(2, 12, 2)
SEED_CODES = 300  # codes the parent adds to the spring pool before the workers start


def seed_values() -> list[str]:
    return [f"SEED-{index:05d}" for index in range(SEED_CODES)]


def customer(proc: int, seq: int) -> str:
    """The customer (recipient) id of one request: the table's issued_to_id / used_by."""
    return f"h{proc}-{seq}"


def _no_queue(message: Any) -> None:
    raise AssertionError("the history sends no asynchronous operations")


# ---------------------------------------------------------------------- calls, as API Gateway


HANDLERS = {
    "add": "mews_add",
    "delete": "mews_delete",
    "getAll": "mews_get_all",
    "maestra": "maestra_sync",
    "crm login": "crm_login",
    "crm request": "crm_request_promo_code",
    "validate": "synctv_validate",
}


def _handler(module: str) -> Any:
    import importlib

    return importlib.import_module(f"functions.{module}.app").handler


def _invoke(module: str, event: dict[str, Any]) -> dict[str, Any]:
    from tests.support.deployment import invoke

    return invoke(_handler(module), event)


def maestra(operation: str, body: dict[str, Any], transaction: str | None) -> tuple[int, Any]:
    from tools.lambda_runtime import http_api_event

    parameters = {"endpointId": "demo-website", "operation": operation, "deviceUUID": ""}
    if transaction is not None:
        parameters["transactionId"] = transaction
    headers = {"content-type": "application/json", "authorization": f"SecretKey {MAESTRA_KEY}"}
    path = "/v3/operations/sync"
    event = http_api_event(
        "POST",
        path,
        f"POST {path}",
        json.dumps(body).encode(),
        headers,
        parameters,
        None,
        urlencode(parameters),
    )
    response = _invoke("maestra_sync", event)
    answer = json.loads(response["body"])
    promo = answer.get("promoCode") or {}
    return response["statusCode"], {
        "status": answer.get("status"),
        "issueStatus": promo.get("issueStatus"),
        "value": (promo.get("ids") or {}).get("value"),
        "isUsed": promo.get("isUsed"),
        "message": str(answer.get("validationMessages") or answer.get("errorMessage") or "")[:200],
    }


def mews(operation: str, body: dict[str, Any], listing: bool = False) -> tuple[int, Any]:
    from tests.support.deployment import post_json

    path = f"/api/connector/v1/voucherCodes/{operation}"
    module = HANDLERS[operation]
    response = _invoke(module, post_json(path, body))
    answer = json.loads(response["body"])
    if listing and response["statusCode"] == 200:
        answer = {"values": [code["Value"] for code in answer["VoucherCodes"]]}
    elif operation == "add" and response["statusCode"] == 200:
        answer = {
            "VoucherCodes": [{"Value": c["Value"], "Id": c["Id"]} for c in answer["VoucherCodes"]]
        }
    return response["statusCode"], answer


def crm_login() -> str | None:
    from tests.support.deployment import post_json

    for _ in range(5):
        path = "/crmapi/rest/v2/authentication/token"
        response = _invoke("crm_login", post_json(path, CRM_LOGIN))
        if response["statusCode"] == 200:
            token: str = json.loads(response["body"])["data"]["token"]
            return token
    return None


def crm_request(body: dict[str, Any]) -> tuple[int, Any]:
    from tests.support.deployment import post_json

    path = "/crmapi/rest/v2/promotion_campaigns/request_promo_code"
    response = _invoke("crm_request_promo_code", post_json(path, body))
    answer = json.loads(response["body"])
    data = answer.get("data") or {}
    return response["statusCode"], {
        "status": answer["status"],
        "data": {"code": data.get("code"), "life_cycle_state": data.get("life_cycle_state")},
    }


def synctv_validate(value: str) -> tuple[int, Any]:
    from tools.lambda_runtime import http_api_event

    path = "/rest/v1/promo_codes/validate"
    query = {"device": DEMO_DEVICE, "code": value}
    event = http_api_event("GET", path, f"GET {path}", b"", {}, query, None, urlencode(query))
    response = _invoke("synctv_validate", event)
    root = etree.fromstring(response["body"].encode())
    code = root.findtext("response/code")
    return response["statusCode"], {"code": int(code) if code else None}


def issued_value(kind: str, status: int | None, answer: Any) -> str | None:
    """The code an issue answer says its request was issued, if it says so."""
    if status != 200:
        return None
    if kind == ISSUE_CRM:
        if answer["status"]["code"] == "OK":
            return str(answer["data"]["code"])
        return None
    if answer.get("status") == "Success" and answer.get("issueStatus") == "Issued":
        return str(answer["value"])
    return None


# ---------------------------------------------------------------------- the parent


@dataclass
class RunSummary:
    workers: dict[int, int | None] = field(default_factory=dict)  # proc -> exit code
    killed: int | None = None
    replacement: int | None = None
    seconds: float = 0.0


def run_history(
    plan: Plan, workers: int, operations: int, kill: bool, grace: float = 30.0
) -> RunSummary:
    """Run ``workers`` processes sharing ``operations``; kill the first one once mid-run (at a
    bulk add if one comes in time) and start a replacement with the rest of its quota. Every
    process started is reaped before this returns."""
    context = multiprocessing.get_context("spawn")
    summary = RunSummary()
    quota = -(-operations // workers)
    ready, go, deadline = context.Queue(), context.Event(), context.Value("d", 0.0)
    procs: dict[int, Any] = {}

    def start(proc: int, quota: int) -> None:
        procs[proc] = context.Process(
            target=run_worker, args=(plan, proc, quota, ready, go, deadline), daemon=True
        )
        procs[proc].start()

    try:
        for proc in range(workers):
            start(proc, quota)
        _wait_until_ready(ready, procs)
        started = time.time()
        deadline.value = started + plan.seconds
        go.set()
        if kill:
            summary.killed = _kill_one(plan, procs[0], quota)
        if summary.killed is not None:
            answered = sum(1 for r in _records(worker_file(plan.directory, 0)) if "answer" in r)
            summary.replacement = workers
            start(workers, max(quota - answered, 0))
        while any(p.is_alive() for p in procs.values()) and time.time() < deadline.value + grace:
            time.sleep(0.1)
        summary.seconds = time.time() - started
    finally:
        for process in procs.values():
            if process.is_alive():
                process.kill()
            process.join()
        ready.close()
        ready.join_thread()
    summary.workers = {proc: p.exitcode for proc, p in procs.items()}
    return summary


def _wait_until_ready(ready: Any, procs: dict[int, Any]) -> None:
    waiting = set(procs)
    while waiting:
        try:
            waiting.discard(ready.get(timeout=0.5))
        except queue.Empty:
            dead = [proc for proc in waiting if not procs[proc].is_alive()]
            assert not dead, f"workers {dead} died before they were ready"


def _kill_one(plan: Plan, victim: Any, quota: int) -> int | None:
    """SIGKILL ``victim`` (worker 0) once, during a staged add if one is in flight while it has
    made between a fifth and three fifths of its ``quota``, else at three fifths; the worker
    killed, or None if it had ended. Judged by its progress, not the clock, so a fast machine
    (whose workers finish long before the time bound) kills it too."""
    records = worker_file(plan.directory, 0)
    while victim.is_alive():
        made = _lines(records)
        if made >= quota * 0.6:
            break
        if made >= quota * 0.2 and _in_flight_bulk_add(records):
            time.sleep(random.Random(plan.seed).uniform(0.0, 0.3))
            break
        time.sleep(0.02)
    if not victim.is_alive():
        return None
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    return 0


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(1 for _ in file)
    except FileNotFoundError:
        return 0


def _in_flight_bulk_add(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            file.seek(max(0, path.stat().st_size - 65536))
            tail = file.read().splitlines()
    except FileNotFoundError:
        return False
    if not tail:
        return False
    try:
        last = json.loads(tail[-1])
    except ValueError:
        return False
    return "sent" in last and last["op"] == ADD and len(last["request"]["values"]) > STAGED_ABOVE


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as file:
        for line in file:
            if line.endswith("\n"):  # a line cut by a kill is no record
                yield json.loads(line)


# ---------------------------------------------------------------------- the history


@dataclass
class Attempt:
    status: int | None  # None: no answer (its process was killed mid-request)
    body: Any = None
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def unknown(self) -> bool:
        return self.status is None or self.status >= 500


@dataclass
class Request:
    proc: int
    seq: int
    op: str
    request: dict[str, Any]
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.op} p{self.proc}#{self.seq}"

    @property
    def unknown(self) -> bool:
        """Every attempt was told the outcome is unknown (or got no answer)."""
        return all(attempt.unknown for attempt in self.attempts)

    def told(self) -> str:
        return "; ".join(
            f"{'no answer' if a.status is None else a.status} {json.dumps(a.body)[:160]}"
            for a in self.attempts
        )


def load_history(directory: str | Path) -> list[Request]:
    """Every request of every worker, in each worker's order."""
    requests: list[Request] = []
    for path in sorted(Path(directory).glob("worker-*.jsonl")):
        current: dict[int, Request] = {}
        for record in _records(path):
            if "sent" in record:
                seq = record["sent"]
                if seq not in current:
                    current[seq] = Request(record["proc"], seq, record["op"], record["request"])
                    requests.append(current[seq])
                current[seq].attempts.append(Attempt(None))
            else:
                attempt = current[record["answer"]].attempts[record["attempt"]]
                attempt.status = record["status"]
                attempt.body = record["body"]
                attempt.faults = record["faults"]
    return requests


# ---------------------------------------------------------------------- the final table


@dataclass(frozen=True)
class Stored:
    value: str
    uuid: str
    state: str
    deleted: bool
    visible: bool
    issued_to: str | None
    used_by: str | None


def final_codes(items: list[dict[str, Any]]) -> dict[str, Stored]:
    """The codes of a raw scan, each with whether a reader can see it (its batch committed)."""
    outcomes = {
        item["pk"]["S"].rsplit("#", 1)[1]: item["outcome"]["S"]
        for item in items
        if item["sk"]["S"] == "BATCH"
    }
    codes = {}
    for item in items:
        if item["sk"]["S"] != "CODE":
            continue
        batch = item.get("staged_batch", {}).get("S")
        codes[item["value"]["S"]] = Stored(
            value=item["value"]["S"],
            uuid=item["uuid"]["S"],
            state=item["state"]["S"],
            deleted=item["activity"]["S"] == "DELETED",
            visible=batch is None or outcomes.get(batch) == "COMMITTED",
            issued_to=item.get("issued_to_id", {}).get("S"),
            used_by=item.get("used_by", {}).get("S"),
        )
    return codes


def save_table(directory: str | Path, items: list[dict[str, Any]]) -> None:
    with (Path(directory) / "table.jsonl").open("w") as file:
        file.writelines(json.dumps(item) + "\n" for item in items)


def load_table(directory: str | Path) -> list[dict[str, Any]]:
    with (Path(directory) / "table.jsonl").open() as file:
        return [json.loads(line) for line in file]


# ---------------------------------------------------------------------- the checker


@dataclass
class Report:
    operations: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    faults_by_call: Counter[str] = field(default_factory=Counter)
    violations: list[tuple[str, str]] = field(default_factory=list)

    def violation(self, rule: str, text: str) -> None:
        self.violations.append((rule, text))

    @property
    def total_operations(self) -> int:
        return sum(self.operations.values())

    @property
    def total_faults(self) -> int:
        return sum(self.faults.values())

    def text(self, shown: int = 40) -> str:
        by_rule = Counter(rule for rule, _ in self.violations)
        lines = [
            f"operations: {self.total_operations} (attempts {sum(self.attempts.values())})",
            *(
                f"  {op:<28}{n:>6}   "
                + ", ".join(f"{o} {c}" for (k, o), c in sorted(self.outcomes.items()) if k == op)
                for op, n in sorted(self.operations.items())
            ),
            f"faults injected: {self.total_faults}",
            "  by fault: " + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())),
            "  by call:  " + ", ".join(f"{k} {v}" for k, v in sorted(self.faults_by_call.items())),
            f"violations: {len(self.violations)}",
            *(f"  {rule:<22}{by_rule[rule]:>6}" for rule in RULES),
            *(f"  [{rule}] {text}" for rule, text in self.violations[:shown]),
        ]
        if len(self.violations) > shown:
            lines.append(f"  ... and {len(self.violations) - shown} more")
        return "\n".join(lines)


def check(requests: list[Request], codes: dict[str, Stored]) -> Report:
    report = Report()
    _tally(requests, report)
    _complete(requests, report)
    _issued_twice(requests, report)
    _untold_changes(requests, codes, report)
    _answers_agree(requests, codes, report)
    _whole_adds(requests, report)
    return report


def _outcome(request: Request) -> str:
    last = request.attempts[-1]
    if last.status is None:
        return "no answer"
    if last.unknown:
        return f"unknown {last.status}"
    if request.op in ISSUES:
        return "issued" if issued_value(request.op, last.status, last.body) else "not issued"
    if request.op == REDEEM:
        return "redeemed" if _redeemed(last) else "refused"
    if request.op == VALIDATE:
        return f"code {last.body.get('code')}"
    return str(last.status)


def _redeemed(attempt: Attempt) -> bool:
    return attempt.status == 200 and attempt.body.get("status") == "Success"


def _tally(requests: list[Request], report: Report) -> None:
    for request in requests:
        report.operations[request.op] += 1
        report.attempts[request.op] += len(request.attempts)
        report.outcomes[request.op, _outcome(request)] += 1
        for attempt in request.attempts:
            for key, count in attempt.faults.items():
                point, fault = key.split("|")
                report.faults[fault] += count
                report.faults_by_call[point.split(":")[0]] += count


def _complete(requests: list[Request], report: Report) -> None:
    """Only a process's last attempt may lack its answer (it was killed during it): any other
    missing answer means the history lost a record, and nothing it says can be trusted."""
    last: dict[int, Request] = {}
    for request in requests:
        last[request.proc] = request
    for request in requests:
        for index, attempt in enumerate(request.attempts):
            final = request is last[request.proc] and index == len(request.attempts) - 1
            if attempt.status is None and not final:
                report.violation(INCOMPLETE, f"{request.name} attempt {index} has no answer")


def _issued_twice(requests: list[Request], report: Report) -> None:
    told: defaultdict[str, set[str]] = defaultdict(set)
    for request in requests:
        if request.op not in ISSUES:
            continue
        for attempt in request.attempts:
            value = issued_value(request.op, attempt.status, attempt.body)
            if value is not None:
                told[value].add(request.name)
    for value, names in told.items():
        if len(names) > 1:
            report.violation(ISSUED_TWICE, f"{value} was answered as issued to {sorted(names)}")


def _untold_changes(requests: list[Request], codes: dict[str, Stored], report: Report) -> None:
    by_customer = {customer(r.proc, r.seq): r for r in requests if r.op in (*ISSUES, REDEEM)}
    issued: defaultdict[str, list[str]] = defaultdict(list)
    used: defaultdict[str, list[str]] = defaultdict(list)
    for code in codes.values():
        if code.issued_to is not None and code.issued_to.startswith("h"):
            issued[code.issued_to].append(code.value)
        if code.used_by is not None and code.used_by.startswith("h"):
            used[code.used_by].append(code.value)
    for changes, ops, verb in ((issued, ISSUES, "issued to"), (used, (REDEEM,), "used by")):
        for who, values in changes.items():
            request = by_customer.get(who)
            if request is None or request.op not in ops:
                report.violation(UNTOLD, f"{values} {verb} {who}: no such request was made")
                continue
            if len(values) > 1:
                report.violation(
                    UNTOLD, f"{request.name} changed {len(values)} codes: {sorted(values)}"
                )
            for value in values:
                if request.unknown or any(_names(request, a, value) for a in request.attempts):
                    continue
                report.violation(
                    UNTOLD,
                    f"{value} is {verb} {request.name} {request.request}, "
                    f"which was told: {request.told()}",
                )


def _names(request: Request, attempt: Attempt, value: str) -> bool:
    """Whether ``attempt``'s answer reported the change of ``value`` to its caller."""
    if request.op == REDEEM:
        return _redeemed(attempt) and request.request["value"] == value
    return issued_value(request.op, attempt.status, attempt.body) == value


def _answers_agree(requests: list[Request], codes: dict[str, Stored], report: Report) -> None:
    added_by: dict[tuple[int, str], int] = {}  # (proc, value) -> seq of its add answered 200
    for request in requests:
        if request.op == ADD and request.attempts[-1].status == 200:
            for value in request.request["values"]:
                added_by[request.proc, value] = request.seq
    for request in requests:
        for attempt in request.attempts:
            problem = _disagreement(request, attempt, codes, added_by)
            if problem:
                report.violation(DISAGREES, f"{request.name} {problem}")
        if request.op in (ADD, DELETE) and request.unknown:
            problem = _not_all_or_none(request, codes)
            if problem:
                report.violation(DISAGREES, f"{request.name} (told unknown) {problem}")


def _disagreement(
    request: Request,
    attempt: Attempt,
    codes: dict[str, Stored],
    added_by: dict[tuple[int, str], int],
) -> str | None:
    if attempt.unknown:
        return None
    who = customer(request.proc, request.seq)
    if request.op in ISSUES:
        value = issued_value(request.op, attempt.status, attempt.body)
        if value is None:
            return None
        code = codes.get(value)
        if code is None or code.issued_to != who or code.state not in ("ISSUED", "USED"):
            return f"was answered 'issued {value}', the table has {code}"
        return None
    if request.op == REDEEM and _redeemed(attempt):
        code = codes.get(request.request["value"])
        if code is None or code.state != "USED" or code.used_by != who:
            return f"was answered 'redeemed', the table has {code}"
        return None
    if request.op == ADD:
        values = request.request["values"]
        present = [v for v in values if v in codes and codes[v].visible]
        if attempt.status == 200:
            ids = {c["Value"]: c["Id"] for c in attempt.body["VoucherCodes"]}
            wrong = [v for v in values if v not in codes or codes[v].uuid != ids.get(v)]
            if len(present) != len(values) or wrong:
                return f"was answered 200, {len(present)} of {len(values)} exist, ids differ for {wrong[:5]}"
        elif present:
            return f"was refused ({attempt.status} {attempt.body}), yet {len(present)} of its values exist"
        return None
    if request.op == DELETE:
        deleted = [v for v in request.request["values"] if codes.get(v) and codes[v].deleted]
        if attempt.status == 200 and len(deleted) != len(request.request["values"]):
            return f"was answered {attempt.body}, {len(deleted)} of its codes are deleted"
        if attempt.status != 200 and deleted:
            return f"was refused ({attempt.status} {attempt.body}), yet {deleted} are deleted"
        return None
    if request.op == VALIDATE:
        value = request.request["value"]
        code = codes.get(value)
        verdict = attempt.body.get("code")
        if verdict == 1 and (code is None or not code.visible):
            return f"answered 1 (valid) for {value}, the table has {code}"
        # States only move on (AVAILABLE, ISSUED, then USED; DELETED for good): a code still
        # redeemable at the end was redeemable since its add was answered.
        added = added_by.get((request.proc, value))
        if verdict != 1 and added is not None and added < request.seq and _redeemable(code):
            return f"answered {verdict} for {value}, redeemable since its add; the table has {code}"
    return None


def _redeemable(code: Stored | None) -> bool:
    return (
        code is not None
        and code.visible
        and not code.deleted
        and code.state in ("AVAILABLE", "ISSUED")
    )


def _not_all_or_none(request: Request, codes: dict[str, Stored]) -> str | None:
    values = request.request["values"]
    if request.op == ADD:
        hit = [v for v in values if v in codes and codes[v].visible]
    else:
        hit = [v for v in values if codes.get(v) and codes[v].deleted]
    if 0 < len(hit) < len(values):
        return f"left {len(hit)} of {len(values)} codes {'visible' if request.op == ADD else 'deleted'}"
    return None


def _whole_adds(requests: list[Request], report: Report) -> None:
    add_of: dict[str, tuple[str, int]] = {}
    for request in requests:
        if request.op == ADD and len(request.request["values"]) > 1:
            for value in request.request["values"]:
                add_of[value] = (request.name, len(request.request["values"]))
    for request in requests:
        if request.op != GET_ALL:
            continue
        for attempt in request.attempts:
            if attempt.status != 200:
                continue
            listed = attempt.body["values"]
            seen = Counter(add_of[v] for v in listed if v in add_of)
            # A full page ends where its count does: the add its oldest code belongs to may be cut.
            cut = (
                add_of.get(listed[-1])
                if listed and len(listed) == request.request["count"]
                else None
            )
            for (name, size), shown in seen.items():
                if shown < size and (name, size) != cut:
                    report.violation(
                        PARTIAL, f"{request.name} showed {shown} of the {size} codes of {name}"
                    )


if __name__ == "__main__":  # check a kept run again: python -m tests.support.history DIR
    import sys

    checked = check(load_history(sys.argv[1]), final_codes(load_table(sys.argv[1])))
    print(checked.text())
    sys.exit(1 if checked.violations else 0)
