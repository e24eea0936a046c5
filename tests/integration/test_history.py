"""The history checker (issue 15, item 10): separate processes run the real handlers through
injected DynamoDB faults (and one is killed mid-run); the final table is held against every
request and answer (``tests/support/history.py`` describes the workers and the four rules).

``make test`` runs it bounded in time with a fixed seed; ``make chaos`` runs it longer, with more
processes, operations and faults and a new seed each run (``CHAOS_SEED=N`` repeats one).
"""

import contextlib
import os
from pathlib import Path

import pytest

from promo import bootstrap
from promo.domain.models import NewCode
from tests.support import history
from tests.support.tables import Stores
from tools.admin import apply_config
from tools.dynamodb_local import DynamoDBLocal
from tools.template import ROOT

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("CHAOS_SEED", "20250915"))
WORKERS = int(os.environ.get("HISTORY_WORKERS", "4"))
OPERATIONS = int(os.environ.get("HISTORY_OPERATIONS", "2200"))
# The workers stop sending when this has passed; the count asserted below must be reached by then.
SECONDS = float(os.environ.get("HISTORY_SECONDS", "75"))
FAULT_RATE = float(os.environ.get("HISTORY_FAULT_RATE", "0.06"))
LARGE_ADDS = int(os.environ.get("HISTORY_LARGE_ADDS", "2"))
MIN_OPERATIONS = int(os.environ.get("HISTORY_MIN_OPERATIONS", "2000"))
MIN_FAULTS = int(os.environ.get("HISTORY_MIN_FAULTS", "200"))


def seed_table(stores: Stores) -> None:
    """config/demo.yaml (credentials, the spring pool), and the spring pool's codes."""
    svc = bootstrap.services()
    apply_config(ROOT / "config" / "demo.yaml", svc)
    spring = svc.catalog.get_pool("demo", "spring")
    assert spring is not None
    values = history.seed_values()
    for start in range(0, len(values), 1000):
        new = [NewCode("spring", value) for value in values[start : start + 1000]]
        svc.codes.add("demo", {"spring": spring}, new, "history:seed")


def test_the_final_table_agrees_with_every_answer_of_a_faulty_multi_process_history(
    deployed: Stores,
    dynamodb_local: DynamoDBLocal,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_table(deployed)
    plan = history.Plan(
        endpoint=dynamodb_local.endpoint,
        table_name=deployed.table_name,
        directory=str(tmp_path),
        seed=SEED,
        fault_rate=FAULT_RATE,
        seconds=SECONDS,
        large_adds=LARGE_ADDS,
    )

    run = history.run_history(plan, WORKERS, OPERATIONS, kill=True)

    items = list(deployed.table.paginate(deployed.table.scan, ConsistentRead=True))
    history.save_table(tmp_path, items)  # `python -m tests.support.history DIR` checks again
    report = history.check(history.load_history(tmp_path), history.final_codes(items))
    with capsys.disabled() if os.environ.get("HISTORY_QUIET") is None else contextlib.nullcontext():
        print(
            f"\nhistory: seed {SEED}, {WORKERS} processes, {run.seconds:.1f} s, "
            f"killed worker {run.killed} (replaced by {run.replacement}); exit codes {run.workers}\n"
            + report.text()
        )
    crashed = {proc: code for proc, code in run.workers.items() if code != 0 and proc != run.killed}
    assert not crashed, f"workers failed: {crashed} (their logs: {tmp_path})"
    assert run.killed is not None, "the worker to be killed mid-run ended before it could be"
    assert not report.violations, report.text()
    assert report.total_operations >= MIN_OPERATIONS, "too few operations in the time allowed"
    assert report.total_faults >= MIN_FAULTS
