"""What a function's cold import does: it builds the request model it validates with, no other
operation's, never imports boto3, and collects no garbage while the layer imports
(docs/architecture.md, Cold start)."""

import json
import subprocess
import sys

import pytest

from tools.template import ROOT

PROBE = """
import gc, json, sys
usual = gc.get_threshold()
during = []  # generations collected while the threshold was raised: during the layer's import
gc.callbacks.append(
    lambda phase, info: phase == "start" and gc.get_threshold() != usual
    and during.append(info["generation"])
)
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
gc.callbacks.clear()
cold = {"collected": during, "frozen": gc.get_freeze_count(), "threshold": gc.get_threshold() == usual}
import pydantic
built = sorted(
    f"{module.split('.')[2]}.{name}"
    for module, loaded in list(sys.modules.items())
    if module.startswith(("promo.codecs.", "promo.protocols."))
    for name, value in vars(loaded).items()
    if isinstance(value, type)
    and issubclass(value, pydantic.BaseModel)
    and value.__module__ == module
    and value.__pydantic_complete__
)
print(json.dumps({"built": built, "boto3": "boto3" in sys.modules, "gc": cold}))
"""


def run_probe(probe: str, function: str) -> str:
    """What ``probe`` prints in a fresh interpreter whose path starts at the function and layer."""
    output = subprocess.run(  # noqa: S603 - this interpreter, a fixed probe
        [
            sys.executable,
            "-c",
            probe,
            str(ROOT / "functions" / function),
            str(ROOT / "layers/promo"),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PYDANTIC_DISABLE_PLUGINS": "__all__", "AWS_REGION": "us-east-1"},
    )
    return output.stdout


def cold_import(function: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(run_probe(PROBE, function))
    return result


def test_a_function_builds_only_its_own_request_model_at_import_and_not_boto3() -> None:
    validate = cold_import("synctv_validate")
    assert (validate["built"], validate["boto3"]) == (["synctv.ValidateRequest"], False)
    request = cold_import("crm_request_promo_code")
    assert (request["built"], request["boto3"]) == (["crm.RequestPromoCode"], False)


def test_every_maestra_function_builds_the_operation_body_at_import() -> None:
    worker = cold_import("maestra_worker")
    assert (worker["built"], worker["boto3"]) == (["maestra.OperationBody"], False)


@pytest.mark.parametrize("function", ["mews_add", "maestra_worker", "synctv_validate"])
def test_a_cold_import_collects_nothing_once_the_layer_imports_and_freezes_what_it_built(
    function: str,
) -> None:
    """No collection while the layer, botocore and pydantic import (it would only rescan what
    the import builds); once the handler is built, what the import made is frozen out of later
    collections and the usual threshold is back."""
    cold = cold_import(function)["gc"]
    assert isinstance(cold, dict)
    assert cold["collected"] == []
    assert cold["frozen"] > 50_000
    assert cold["threshold"] is True


WORK_BEFORE_THE_HANDLER = """
import gc, sys
usual = gc.get_threshold()
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import promo
cycles = [[] for _ in range(600_000)]  # more allocations than the raised threshold allows
for cycle in cycles:
    cycle.append(cycle)
del cycles
import app
print(gc.get_freeze_count(), gc.get_threshold() == usual)
"""


def test_a_process_that_worked_before_building_a_handler_freezes_nothing() -> None:
    """A test run or the local stack collects before its first handler is built: freezing then
    would keep its garbage for good, so it only gets the usual threshold back."""
    assert run_probe(WORK_BEFORE_THE_HANDLER, "mews_add").split() == ["0", "True"]
