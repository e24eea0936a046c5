"""The Lambda shape: separate processes on one pool, as concurrent Lambda instances are.

Each instance is a spawned process that imports the Maestra sync handler afresh (its own
client, credential, pool and candidate caches) and counts its own DynamoDB requests with a
botocore event hook on the handler's client. For each level, its processes drain one pool of
``POOL_CODES`` codes on ``SHARDS`` shards until each is told "none available"; the floor is the
same processes each making raw conditional UpdateItems on known keys, as many in all, measured
in two halves around the drain. The 32 processes then play an end game on ``END_GAME_CODES``.

Every issue is recorded with when it ended, so the last tenth of a pool is the last tenth of
its issues in time, whoever made them.
"""

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.results import Result, at_least, at_most, reported

LEVELS = (4, 16, 32)
POOL_CODES = 2000
SHARDS = 4
END_GAME_PROCESSES = 32
END_GAME_CODES = 100
WARM_UP_ISSUES = 2  # per process, from a pool of its own, before anything is measured
# The floor's known keys, updated (never used up) at every level: half as many writes as the
# pool has codes, half before the drain and half after, is enough for its rate.
FLOOR_CODES = POOL_CODES // 2


def pools() -> list[tuple[str, int]]:
    """The pools this scenario needs (id, codes), for the bench's seed."""
    return [
        *((f"instances-{n}", POOL_CODES) for n in LEVELS),
        ("instances-end-game", END_GAME_CODES),
        ("instances-floor", FLOOR_CODES),
        ("instances-warm-up", WARM_UP_ISSUES * (sum(LEVELS) + 8)),
    ]


# ---------------------------------------------------------------------- one instance


@dataclass
class Call:
    """One invocation of the handler: when it ended, what it issued (None: "none available")
    and what it cost."""

    ended: float
    value: str | None
    requests: int
    queries: int
    lost: int
    again: bool = False  # asked again after its own "none": the pool known empty


def instance(commands: Any, answers: Any, start_line: Any) -> None:
    """A spawned process: a fresh import of the handler, then the parent's commands."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the handler logs and emits metrics to stdout, as on Lambda
    from bench.counting import Requests
    from bench.events import invoke, maestra_issue_event
    from functions.maestra_sync.app import handler
    from promo import bootstrap

    client = bootstrap.services().codes.table.client  # the handler's own client
    requests = Requests(client)
    for _ in range(WARM_UP_ISSUES):
        invoke(handler, maestra_issue_event("instances-warm-up"))
    answers.put(("ready", None))
    while (command := commands.get()) is not None:
        kind, argument = command
        start_line.wait()
        started = time.monotonic()
        if kind == "drain":
            outcome: Any = drain(handler, invoke, maestra_issue_event(argument), requests)
        else:
            outcome = floor(client, argument)
        answers.put((started, outcome))


def drain(handler: Any, invoke: Callable[..., Any], event: Any, requests: Any) -> list[Call]:
    """Issue until told "none available", then ask once more, as clients of an empty pool
    keep asking."""
    calls: list[Call] = []
    while len(calls) < 2 or calls[-1].value is not None or not calls[-1].again:
        before = requests.snapshot()
        body = invoke(handler, event)["body"]
        after = requests.snapshot()
        answer = json.loads(body)
        status = (answer.get("promoCode") or {}).get("issueStatus")
        if status == "Issued":
            value = answer["promoCode"]["ids"]["value"]
        elif "NoAvailablePromoCodesInPool" in body:
            value = None
        else:
            raise AssertionError(body[:500])
        again = bool(calls) and calls[-1].value is None
        requests_, queries, lost = (a - b for a, b in zip(after, before, strict=True))
        calls.append(Call(time.monotonic(), value, requests_, queries, lost, again))
    return calls


def floor(client: Any, keys: Sequence[str]) -> float:
    table = os.environ["TABLE_NAME"]
    for pk in keys:
        client.update_item(
            TableName=table,
            Key={"pk": {"S": pk}, "sk": {"S": "CODE"}},
            UpdateExpression="SET floor_probe = :v",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":v": {"S": "x"}},
        )
    return time.monotonic()


# ---------------------------------------------------------------------- the parent


@dataclass
class Instances:
    """``count`` spawned instances, each warm (its handler imported, credentials cached)."""

    count: int
    context: Any = field(default_factory=lambda: multiprocessing.get_context("spawn"))

    def __post_init__(self) -> None:
        self.answers = self.context.Queue()
        self.start_line = self.context.Barrier(self.count + 1)
        self.commands = [self.context.Queue() for _ in range(self.count)]
        self.processes = [
            self.context.Process(
                target=instance, args=(queue, self.answers, self.start_line), daemon=True
            )
            for queue in self.commands
        ]
        for process in self.processes:
            process.start()
        for _ in range(self.count):
            self.answers.get(timeout=300)

    def run(self, commands: Sequence[tuple[str, Any]]) -> tuple[float, list[Any]]:
        """Each process's command, started together; when they started and what each
        answered."""
        for queue, command in zip(self.commands, commands, strict=True):
            queue.put(command)
        self.start_line.wait()
        answers = [self.answers.get(timeout=300) for _ in commands]
        return min(started for started, _ in answers), [outcome for _, outcome in answers]

    def drain(self, pool: str) -> tuple[float, list[Call]]:
        started, outcomes = self.run([("drain", pool)] * self.count)
        return started, [call for calls in outcomes for call in calls]

    def floor(self, codes: int) -> float:
        """Seconds for ``codes`` raw conditional UpdateItems, shared out over the processes."""
        keys = [f"T#bench#V#INSTANCES-FLOOR-{i:06d}" for i in range(codes)]
        started, ended = self.run([("floor", keys[i :: self.count]) for i in range(self.count)])
        return float(max(ended)) - started

    def close(self) -> None:
        for queue in self.commands:
            queue.put(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()


# ---------------------------------------------------------------------- the figures


@dataclass
class Drain:
    """What one pool's drain cost, over its issues (or a tail of them) and its "none"s."""

    issued: list[Call]
    nones: list[Call]  # the last answer of each process's drain: the fight for the last codes
    empty: list[Call]  # the answers to a pool already empty

    def per_issue(self, what: str, tail: float = 1.0) -> float:
        calls = self.issued[-max(1, round(len(self.issued) * tail)) :]
        return float(sum(getattr(call, what) for call in calls)) / len(calls)


def split(calls: list[Call], codes: int, level: str) -> Drain:
    issued = sorted((call for call in calls if call.value is not None), key=lambda c: c.ended)
    nones = [call for call in calls if call.value is None and not call.again]
    empty = [call for call in calls if call.again]
    values = [call.value for call in issued]
    assert len(values) == len(set(values)), f"{level}: a code issued twice"
    assert len(values) == codes, f"{level}: {len(values)} of {codes} codes issued"
    return Drain(issued, nones, empty)


def level_results(processes: int, drain: Drain, ours: float, floor: float) -> dict[str, Result]:
    name = f"{processes} processes"
    lost_target = {16: 0.05, 32: 0.10}.get(processes)
    lost, lost_tail = drain.per_issue("lost"), drain.per_issue("lost", 0.1)
    requests, queries = drain.per_issue("requests"), drain.per_issue("queries")
    throughput = (POOL_CODES / ours, FLOOR_CODES / floor, "issues/s")
    return {
        f"issue throughput, {name}": (
            at_least(*throughput[:2], 0.7, throughput[2], "over the same processes' raw writes")
            if processes == 16
            else reported(*throughput)
        ),
        f"failed conditional writes per issued code, {name}": (
            at_most(lost, 1.0, lost_target, "writes", f"whole pool of {POOL_CODES}")
            if lost_target
            else reported(lost, 1.0, "writes", f"whole pool of {POOL_CODES}")
        ),
        f"failed conditional writes per issued code, {name}, last 10%": (
            at_most(lost_tail, 1.0, 0.3, "writes")
            if processes == 32
            else reported(lost_tail, 1.0, "writes")
        ),
        f"DynamoDB requests per issued code, {name}": (
            at_most(requests, 1.0, 1.15, "requests", f"index queries per issued code {queries:.3f}")
            if processes == 16
            else reported(requests, 1.0, "requests", f"index queries per issued code {queries:.3f}")
        ),
        f"DynamoDB requests per issued code, {name}, last 10%": reported(
            drain.per_issue("requests", 0.1),
            1.0,
            "requests",
            f"index queries per issued code {drain.per_issue('queries', 0.1):.3f}",
        ),
    }


def lambda_shape() -> dict[str, Result]:
    results: dict[str, Result] = {}
    nones: list[Call] = []
    empty: list[Call] = []
    for processes in LEVELS:
        instances = Instances(processes)
        try:
            floor = instances.floor(FLOOR_CODES // 2)
            started, calls = instances.drain(f"instances-{processes}")
            floor += instances.floor(FLOOR_CODES - FLOOR_CODES // 2)
            drain = split(calls, POOL_CODES, f"{processes} processes")
            ours = drain.issued[-1].ended - started
            results |= level_results(processes, drain, ours, floor)
            nones += drain.nones
            empty += drain.empty
            if processes == END_GAME_PROCESSES:
                _, calls = instances.drain("instances-end-game")
                end_game = split(calls, END_GAME_CODES, "end game")
                nones += end_game.nones
                empty += end_game.empty
                results |= end_game_results(end_game)
        finally:
            instances.close()
    results['DynamoDB requests per "none available" answer, the pool empty'] = at_most(
        sum(call.requests for call in empty) / len(empty),
        SHARDS + 1,
        1.0,
        "requests",
        f"floor: the pool's {SHARDS} shards + 1; {len(empty)} answers, each process's next"
        " after its own 'none', every level and the end game",
    )
    results['DynamoDB requests per "none available" answer, the last of a drain'] = reported(
        sum(call.requests for call in nones) / len(nones),
        SHARDS + 1,
        "requests",
        f"{len(nones)} answers; failed conditional writes per answer"
        f" {sum(call.lost for call in nones) / len(nones):.2f}: the fight for the last codes",
    )
    return results


def end_game_results(drain: Drain) -> dict[str, Result]:
    name = f"{END_GAME_PROCESSES} processes on {END_GAME_CODES} codes"
    return {
        f"end game, DynamoDB requests per issued code, {name}": reported(
            drain.per_issue("requests"),
            1.0,
            "requests",
            f"index queries per issued code {drain.per_issue('queries'):.3f}",
        ),
        f"end game, failed conditional writes per issued code, {name}": reported(
            drain.per_issue("lost"), 1.0, "writes"
        ),
    }
