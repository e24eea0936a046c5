"""``make bench``: the real handlers against the floor DynamoDB itself sets, in one run.

Every floor is measured in the same run, on the same DynamoDB Local, with the same concurrency:
raw conditional UpdateItems for issuing, raw sequential conditional PutItems for bulk adds, a raw
strongly consistent GetItem for validate, ``import boto3`` for cold imports. Results are printed
as one table and written to bench/results.json. Targets are those of docs/architecture.md.
"""

import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import lambda_instances, lifecycle_costs
from bench.counting import Requests
from bench.events import invoke, maestra_issue_event, mews_add_event, validate_event
from bench.results import Result, at_least, at_most, reported

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
RUNTIME_VENV = ROOT / ".local" / "bench-runtime-venv"
CONCURRENCY = (1, 4, 16, 64)
# Issues per concurrency level, in ROUNDS rounds that alternate ours and the floor, so that
# DynamoDB Local's JIT warming up and the machine's drift weigh on both alike.
ISSUES_PER_LEVEL = 1200
ROUNDS = 3
WARM_UP_ISSUES = 400
CONFIGURED_MEMORY_MB = 512  # template.yaml Globals MemorySize
COLD_ROUNDS = 9  # fresh interpreters per function (and for the floor) for cold imports
COLD_START_ROUNDS = 5  # and for the cold starts, which are reported with no target
VALIDATE_SAMPLES = 3000


# ---------------------------------------------------------------------- set-up


def start() -> Any:
    sys.path[:0] = [str(ROOT / "layers" / "promo"), str(ROOT)]
    from tools.dynamodb_local import DynamoDBLocal, free_port

    server = DynamoDBLocal(port=free_port()).start()
    os.environ.update(
        {
            "TABLE_NAME": f"bench-{uuid.uuid4().hex[:8]}",
            "DYNAMODB_ENDPOINT_URL": server.endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "promo-codes",
            "POWERTOOLS_METRICS_NAMESPACE": "PromoCodes",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "PYDANTIC_DISABLE_PLUGINS": "__all__",
        }
    )
    return server


def seed() -> Any:
    from promo import aws
    from promo.bootstrap import bootstrap, install
    from promo.domain.models import NewCode
    from promo.settings import Settings
    from promo.store.client import dynamodb
    from tools.admin import apply_config, ensure_table

    settings = Settings.from_environment()
    # The handlers' own client, built here so the bench can count its requests.
    svc = bootstrap(settings, client=dynamodb(settings, aws.get_session()))
    install(svc)
    # DynamoDB Local writes each stream record inside the write that makes it, where AWS adds
    # nothing to a write's time: a streamed table would charge every item a cost AWS does not,
    # and ours (a code and its id pointer per code added) twice the floor's.
    ensure_table(svc, stream=False)
    apply_config(ROOT / "bench" / "bench.yaml", svc)
    # Every scenario's pools, also when only some run: a 1,000-code add is a path DynamoDB Local
    # compiles on first use, and the seeding's adds warm it for the measured ones.
    pools = [
        # Four times what a level issues: its pages stay full, as in a pool's steady state,
        # instead of the end-game of the last codes, where each page needs two short reads.
        *((f"issue-{n}", ISSUES_PER_LEVEL * 4) for n in CONCURRENCY),
        ("warm-up", WARM_UP_ISSUES + 200),
        ("costs", 600),
        ("validate", 10),
        *lambda_instances.pools(),
        *((row.pool, 200) for row in lifecycle_costs.ROWS),
    ]
    for pool_id, count in pools:
        pool = svc.catalog.get_pool("bench", pool_id)
        assert pool is not None
        for start_at in range(0, count, 1000):
            batch = [
                NewCode(pool_id, f"{pool_id.upper()}-{i:06d}")
                for i in range(start_at, min(count, start_at + 1000))
            ]
            svc.codes.add("bench", {pool_id: pool}, batch, "bench:seed")
    return svc


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Handlers log and emit metrics to stdout as on Lambda; the cost stays, the text goes."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


# ---------------------------------------------------------------------- events


# ---------------------------------------------------------------------- scenarios


def issue_throughput(requests: Requests, client: Any) -> dict[str, Result]:
    from functions.maestra_sync.app import handler

    results: dict[str, Result] = {}
    table = os.environ["TABLE_NAME"]

    def issue(event: dict[str, Any], count: int, issued: list[str]) -> None:
        mine = []
        for _ in range(count):
            body = json.loads(invoke(handler, event)["body"])
            assert body["promoCode"]["issueStatus"] == "Issued", body
            mine.append(body["promoCode"]["ids"]["value"])
        issued.extend(mine)  # list.extend is atomic under the GIL

    def raw(keys: Iterator[dict[str, Any]], count: int, lock: threading.Lock) -> None:
        for _ in range(count):
            with lock:
                key = next(keys)
            client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET floor_probe = :v",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":v": {"S": "x"}},
            )

    def code_keys(pool: str) -> Iterator[dict[str, Any]]:
        """The seeded codes' keys, in order: the floor's "known keys"."""
        prefix = f"T#bench#V#{pool.upper()}"
        return ({"pk": {"S": f"{prefix}-{i:06d}"}, "sk": {"S": "CODE"}} for i in range(10**6))

    # Warm both paths (credentials, pool and candidate caches; DynamoDB Local's JIT) first.
    warm_up = maestra_issue_event("warm-up")
    issue(warm_up, WARM_UP_ISSUES, [])
    raw(code_keys("warm-up"), WARM_UP_ISSUES, threading.Lock())
    for callers in CONCURRENCY:
        event = maestra_issue_event(f"issue-{callers}")
        per_caller = ISSUES_PER_LEVEL // ROUNDS // callers
        issued: list[str] = []
        keys, key_lock = code_keys(f"issue-{callers}"), threading.Lock()
        ours = floor = 0.0
        lost = 0
        ours_round = functools.partial(issue, event, per_caller, issued)
        floor_round = functools.partial(raw, keys, per_caller, key_lock)
        for _ in range(ROUNDS):
            requests.reset()
            ours += timed_parallel(callers, ours_round)
            lost += requests.lost
            floor += timed_parallel(callers, floor_round)
        total = ROUNDS * callers * per_caller
        duplicates = len(issued) - len(set(issued))
        assert len(issued) == total
        results[f"issue throughput, {callers} callers"] = at_least(
            total / ours,
            total / floor,
            0.8 if callers == 16 else 0.7,
            "issues/s",
            f"{ROUNDS} alternating rounds; duplicates {duplicates};"
            f" failed conditional writes per issue {lost / total:.3f}",
        )
        results[f"duplicates issued, {callers} callers"] = Result(
            duplicates,
            0,
            0.0 if duplicates == 0 else float("inf"),
            "== 0",
            "codes",
            duplicates == 0,
        )
    return results


def timed_parallel(callers: int, work: Callable[[], None]) -> float:
    start_line = threading.Barrier(callers + 1)

    def run() -> None:
        start_line.wait()
        work()

    with ThreadPoolExecutor(callers) as executor:
        futures = [executor.submit(run) for _ in range(callers)]
        start_line.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
    return time.perf_counter() - started


def request_costs(requests: Requests) -> dict[str, Result]:
    from functions.maestra_sync.app import handler as issue_handler
    from functions.synctv_validate.app import handler as validate_handler
    from promo import bootstrap

    event = maestra_issue_event("costs")
    for _ in range(20):  # steady state: credentials and pool cached
        invoke(issue_handler, event)
    requests.reset()
    issues = 400
    for _ in range(issues):
        invoke(issue_handler, event)
    per_issue = requests.total / issues
    # Validate on a new instance's services: its first answer reads the device and tenant,
    # the next ones fall within that one cache period. A refresh costs those reads again once
    # per CONFIG_CACHE_SECONDS, whatever the traffic: a cost per instance and period, reported
    # as such, not spread over whichever validates a run happens to time it among.
    svc = bootstrap.services()
    bootstrap.install(bootstrap.bootstrap(svc.settings, client=svc.codes.table.client))
    validate = validate_event("VALIDATE-000001")
    requests.reset()
    invoke(validate_handler, validate)
    first = requests.total
    requests.reset()
    started = time.monotonic()
    for _ in range(200):
        invoke(validate_handler, validate)
    within = time.monotonic() - started < svc.settings.config_cache_seconds
    per_validate = requests.total / 200 if within else float("inf")
    return {
        "DynamoDB requests per issue from a pool": at_most(
            per_issue, 1.0, 1.2, "requests", f"uncontended, {issues} issues, auth cached"
        ),
        "DynamoDB requests per validate": at_most(
            per_validate,
            1.0,
            1.0,
            "requests",
            "200 validates within one configuration cache period"
            if within
            else "the 200 validates outlasted the configuration cache period",
        ),
        "DynamoDB requests, an instance's first validate": reported(
            first,
            1.0,
            "requests",
            "its code, and the device credential and tenant it then caches: read again once"
            f" per {svc.settings.config_cache_seconds:g} s (CONFIG_CACHE_SECONDS)",
        ),
    }


def bulk_add(requests: Requests, client: Any) -> dict[str, Result]:
    from functions.mews_add.app import handler

    table = os.environ["TABLE_NAME"]
    invoke(handler, mews_add_event(["WARM-UP"]))
    ours = floor = 0.0
    add_requests = 0
    for round_ in range(ROUNDS):  # alternating, as the issue scenarios
        values = [f"ADD-{round_}-{i:05d}" for i in range(1000)]
        requests.reset()
        started = time.perf_counter()
        response = invoke(handler, mews_add_event(values))
        ours += time.perf_counter() - started
        assert response["statusCode"] == 200, response["body"][:500]
        add_requests = requests.total
        started = time.perf_counter()
        for index in range(1000):
            client.put_item(
                TableName=table,
                Item={
                    "pk": {"S": f"FLOOR#PUT#{round_}#{index}"},
                    "sk": {"S": "CODE"},
                    "v": {"S": "x"},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        floor += time.perf_counter() - started
    return {
        "add 1,000 codes through add": at_most(
            ours / ROUNDS,
            floor / ROUNDS,
            0.4,
            "s",
            f"mean of {ROUNDS} alternating rounds; {add_requests} DynamoDB requests per add",
        )
    }


def validate_latency(client: Any) -> dict[str, Result]:
    from functions.synctv_validate.app import handler

    table = os.environ["TABLE_NAME"]
    event = validate_event("VALIDATE-000002")
    key = {"pk": {"S": "T#bench#V#VALIDATE-000002"}, "sk": {"S": "CODE"}}
    ours, floor = [], []
    for _ in range(50):
        invoke(handler, event)
        client.get_item(TableName=table, Key=key, ConsistentRead=True)
    # Interleaved samples, enough that p99 is the 30th slowest, not one burst of the machine's.
    for _ in range(VALIDATE_SAMPLES):
        started = time.perf_counter()
        body = invoke(handler, event)["body"]
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.get_item(TableName=table, Key=key, ConsistentRead=True)
        floor.append(time.perf_counter() - started)
    assert "<code>1</code>" in body
    p50 = (statistics.median(ours) * 1000, statistics.median(floor) * 1000)
    p99 = (quantile(ours, 0.99) * 1000, quantile(floor, 0.99) * 1000)
    return {
        "warm validate p50": at_most(*p50, 1.5, "ms"),
        "warm validate p99": at_most(*p99, 1.5, "ms", "reported; the target is on p50"),
    }


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def runtime_python() -> Path:
    """A venv like the Lambda runtime: the layer's requirements and boto3, nothing else (the
    development venv has packages botocore would import, and that changes its cost)."""
    python = RUNTIME_VENV / "bin" / "python"
    marker = RUNTIME_VENV / ".installed"
    wanted = (ROOT / "layers" / "promo" / "requirements.txt").read_text()
    if not marker.exists() or marker.read_text() != wanted:
        finder = subprocess.run(
            [str(ROOT / "tools" / "find-python313")], capture_output=True, text=True, check=True
        )
        subprocess.run(
            [finder.stdout.strip(), "-m", "venv", "--clear", str(RUNTIME_VENV)], check=True
        )
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(ROOT / "layers" / "promo" / "requirements.txt"),
                "boto3==1.43.108",
                "botocore==1.43.127",
            ],
            check=True,
        )
        marker.write_text(wanted)
    return python


def cold_imports() -> dict[str, Result]:
    python = runtime_python()
    layer = ROOT / "layers" / "promo"
    environment = {
        "PATH": os.environ["PATH"],
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
        "AWS_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "",
    }

    def import_time(module: str, path: list[Path]) -> float:
        paths = [str(p) for p in path]
        code = (
            f"import sys, time; sys.path[:0] = {paths!r}; t = time.perf_counter(); "
            f"import {module}; print(time.perf_counter() - t)"
        )
        answer = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, check=True, env=environment
        )
        return float(answer.stdout) * 1000

    functions = sorted(path.parent for path in (ROOT / "functions").glob("*/app.py"))
    for function in functions:  # write each one's bytecode once
        import_time("app", [function, layer])
    # Interleaved rounds: the floor and every function in each, so drift in the machine's speed
    # over the scenario weighs on all of them alike instead of on whichever ran last.
    samples: dict[str, list[float]] = {"boto3": []}
    for _ in range(COLD_ROUNDS):
        samples["boto3"].append(import_time("boto3", []))
        for function in functions:
            samples.setdefault(function.name, []).append(import_time("app", [function, layer]))
    floor = statistics.median(samples.pop("boto3"))
    return {
        f"cold import {name}": at_most(statistics.median(times), floor, 1.3, "ms")
        for name, times in samples.items()
    }


COLD_START = """
import sys, time
sys.path[:0] = sys.argv[1:3]
started = time.perf_counter()
import app
imported = time.perf_counter()
import json, types
event = json.loads(open(sys.argv[3]).read())
context = types.SimpleNamespace(
    function_name=sys.argv[4],
    memory_limit_in_mb=512,
    invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:" + sys.argv[4],
    aws_request_id="bench",
)
called = time.perf_counter()
response = app.handler(event, context)
answered = time.perf_counter()
status = response.get("statusCode") or f"{len(response['batchItemFailures'])} batch item failures"
print(json.dumps([answered - called + imported - started, str(status)]))
"""

COLD_FLOOR = """
import sys, time
started = time.perf_counter()
import boto3
client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=sys.argv[1])
key = {"pk": {"S": "FLOOR"}, "sk": {"S": "COLD"}}
client.get_item(TableName=sys.argv[2], Key=key, ConsistentRead=True)
print(time.perf_counter() - started)
"""


def cold_starts(svc: Any) -> dict[str, Result]:
    """Informational: a fresh interpreter imports a handler and answers its events/ example
    (over config/demo.yaml, live tokens put in), so a cost moved from import to the first
    call still shows. The floor is a fresh boto3 client's first strongly consistent GetItem."""
    from tools import sam_local
    from tools.admin import apply_config

    apply_config(ROOT / "config" / "demo.yaml", svc)
    python = runtime_python()
    layer = ROOT / "layers" / "promo"
    keep = ("PATH", "TABLE_NAME", "DYNAMODB_ENDPOINT_URL", "AWS_", "POWERTOOLS_", "PYDANTIC_")
    environment = {k: v for k, v in os.environ.items() if k.startswith(keep)}
    environment |= {"PYTHONDONTWRITEBYTECODE": "", "POWERTOOLS_METRICS_DISABLED": "true"}

    def event(name: str) -> dict[str, Any]:
        """events/<name>.json with its placeholders filled in (a live CRM.COM token or SyncTV
        session, a demo code's id), as `make sam-local-db` fills them."""
        loaded: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
        return sam_local.fill(loaded, svc)

    def run(code: str, *arguments: str) -> str:
        output = subprocess.run(
            [str(python), "-c", code, *arguments],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
        )
        return output.stdout.strip().splitlines()[-1]  # the handler logs before it

    floor = statistics.median(
        float(run(COLD_FLOOR, os.environ["DYNAMODB_ENDPOINT_URL"], os.environ["TABLE_NAME"]))
        for _ in range(COLD_START_ROUNDS)
    )
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for function in sorted((ROOT / "functions").glob("*/app.py")):
            name = function.parent.name
            samples, statuses = [], set()
            for index in range(COLD_START_ROUNDS):
                path = Path(scratch) / f"{name}-{index}.json"
                path.write_text(json.dumps(event(name)))
                seconds, status = json.loads(
                    run(COLD_START, str(function.parent), str(layer), str(path), name)
                )
                samples.append(seconds)
                statuses.add(status)
            results[f"cold start {name}"] = reported(
                statistics.median(samples) * 1000,
                floor * 1000,
                "ms",
                f"import + first answer to events/{name}.json: status "
                + ", ".join(sorted(statuses)),
            )
    return results


def peak_memory() -> dict[str, Result]:
    code = """
import json, resource, sys
sys.path[:0] = [sys.argv[1] + '/layers/promo', sys.argv[1]]
from bench.events import invoke, maestra_issue_event, validate_event
from functions.maestra_sync.app import handler as issue
from functions.synctv_validate.app import handler as validate
issue_event, validate_event_ = maestra_issue_event('costs'), validate_event('VALIDATE-000003')
for index in range(10_000):
    if index % 50 == 0:
        json.loads(invoke(issue, issue_event)['body'])
    else:
        invoke(validate, validate_event_)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    quiet = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
    output = subprocess.run(
        [sys.executable, "-c", code, str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | quiet,
    )
    peak = float(output.stdout.strip().splitlines()[-1])
    return {
        "peak memory, 10,000 invocations": at_most(
            peak,
            CONFIGURED_MEMORY_MB,
            0.5,
            "MB",
            "floor is the function's configured memory; 9,800 validates and 200 issues",
        )
    }


# ---------------------------------------------------------------------- report


def report(results: dict[str, Result]) -> None:
    width = max(len(name) for name in results) + 2
    print(
        f"\n{'scenario':{width}} {'ours':>10} {'floor':>10} {'ratio':>7} {'target':>8} "
        f"{'unit':>9}  met"
    )
    for name, result in results.items():
        print(
            f"{name:{width}} {result.ours:10.3f} {result.floor:10.3f} {result.ratio:7.3f} "
            f"{result.target:>8} {result.unit:>9}  {'yes' if result.met else 'NO'}"
            + (f"   ({result.note})" if result.note else "")
        )
    RESULTS.write_text(
        json.dumps({name: asdict(r) for name, r in results.items()}, indent=2) + "\n"
    )
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


def scenarios(svc: Any, requests: Requests) -> dict[str, Callable[[], dict[str, Result]]]:
    """The bench's scenarios by name, in the order a full run takes them."""
    client = svc.codes.table.client  # the handlers' own client, so its events count

    def quiet[**P](scenario: Callable[P, dict[str, Result]]) -> Callable[P, dict[str, Result]]:
        def run(*args: P.args, **kwargs: P.kwargs) -> dict[str, Result]:
            with quiet_stdout():
                return scenario(*args, **kwargs)

        return run

    return {
        "issue": functools.partial(quiet(issue_throughput), requests, client),
        "costs": lambda: (
            quiet(request_costs)(requests) | quiet(lifecycle_costs.lifecycle_costs)(requests)
        ),
        "add": functools.partial(quiet(bulk_add), requests, client),
        "validate": functools.partial(quiet(validate_latency), client),
        "lambda": lambda_instances.lambda_shape,
        "memory": peak_memory,
        "cold": lambda: cold_imports() | cold_starts(svc),
    }


def main() -> int:
    """``python -m bench``: every scenario; ``python -m bench lambda add``: those alone."""
    started = time.perf_counter()
    server = start()
    try:
        svc = seed()
        requests = Requests(svc.codes.table.client)
        available = scenarios(svc, requests)
        only = sys.argv[1:] or list(available)
        unknown = set(only) - set(available)
        if unknown:
            raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
        results: dict[str, Result] = {}
        for name, scenario in available.items():
            if name in only:
                results |= scenario()
        report(results)
    finally:
        server.stop()
    print(f"bench took {time.perf_counter() - started:.0f} s")
    return 0 if all(r.met for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
