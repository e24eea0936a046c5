"""What a function's cold import does: it builds the request model it validates with, no other
operation's, and never imports boto3 (docs/architecture.md, Cold start)."""

import json
import subprocess
import sys

from tools.template import ROOT

PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
import pydantic
built = sorted(
    f"{module.removeprefix('promo.codecs.')}.{name}"
    for module, loaded in list(sys.modules.items())
    if module.startswith("promo.codecs.")
    for name, value in vars(loaded).items()
    if isinstance(value, type)
    and issubclass(value, pydantic.BaseModel)
    and value.__module__ == module
    and value.__pydantic_complete__
)
print(json.dumps({"built": built, "boto3": "boto3" in sys.modules}))
"""


def cold_import(function: str) -> dict[str, object]:
    output = subprocess.run(  # noqa: S603 - this interpreter, a fixed probe
        [
            sys.executable,
            "-c",
            PROBE,
            str(ROOT / "functions" / function),
            str(ROOT / "layers/promo"),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PYDANTIC_DISABLE_PLUGINS": "__all__", "AWS_REGION": "us-east-1"},
    )
    result: dict[str, object] = json.loads(output.stdout)
    return result


def test_a_function_builds_only_its_own_request_model_at_import_and_not_boto3() -> None:
    assert cold_import("synctv_validate") == {"built": ["synctv.ValidateRequest"], "boto3": False}
    assert cold_import("crm_request_promo_code") == {
        "built": ["crm.RequestPromoCode"],
        "boto3": False,
    }


def test_every_maestra_function_builds_the_operation_body_at_import() -> None:
    assert cold_import("maestra_worker") == {"built": ["maestra.OperationBody"], "boto3": False}
