"""template.yaml carries the guarantees docs/architecture.md promises about the deployed stack."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from promo.store import keys
from tools.template import ROOT, create_table_request, load_template, resources_of_type


def table() -> dict[str, Any]:
    (resource,) = resources_of_type("AWS::DynamoDB::Table").values()
    return resource


def test_the_table_is_on_demand_encrypted_recoverable_and_protected_by_default() -> None:
    resource = table()
    properties = resource["Properties"]

    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["TimeToLiveSpecification"]["Enabled"] is True
    assert properties["DeletionProtectionEnabled"] == {"Fn::If": ["ProtectTable", True, False]}
    assert load_template()["Parameters"]["DeletionProtection"]["Default"] == "true"
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def test_index_projections_keep_claims_off_the_listing_index() -> None:
    indexes = {
        index["IndexName"]: index
        for index in create_table_request("promo")["GlobalSecondaryIndexes"]
    }

    assert set(indexes) == {keys.TableLayout().available_index, "listing"}
    assert indexes["listing"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # Projected attributes never change while a code is available: every change of a code
    # (the first one also drops a bulk add's staging marker) removes its entry.
    assert indexes["available_v2"]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": [
            "value",
            "uuid",
            "number",
            "created_at",
            "created_by",
            "valid_from",
            "valid_until",
            "staged_batch",
            "staged_until",
        ],
    }


def test_functions_run_python_3_13_on_arm64_with_the_shared_layer() -> None:
    function_globals = load_template()["Globals"]["Function"]

    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Layers"] == [{"Ref": "PromoLayer"}]
    layer = resources_of_type("AWS::Serverless::LayerVersion")["PromoLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}


def test_each_function_is_built_from_its_own_sources_without_a_requirements_file(
    tmp_path: Path,
) -> None:
    """sam build runs tools/sam-build's Makefile for each function, as it would in a copy of
    the function's folder: its sources, nothing to install (the layer has every dependency),
    so no "requirements.txt file not found" per function."""
    functions = resources_of_type("AWS::Serverless::Function")
    for logical_id, function in functions.items():
        metadata = function["Metadata"]
        assert metadata == {"BuildMethod": "makefile", "ContextPath": "tools/sam-build"}
        source = ROOT / function["Properties"]["CodeUri"]
        copy, artifacts = tmp_path / logical_id / "source", tmp_path / logical_id / "artifacts"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
        artifacts.mkdir()
        subprocess.run(  # noqa: S603 - fixed arguments
            [  # noqa: S607 - make from PATH, as sam runs it
                "make",
                "--silent",
                "--makefile",
                str(ROOT / metadata["ContextPath"] / "Makefile"),
                f"build-{logical_id}",
                f"ARTIFACTS_DIR={artifacts}",
            ],
            cwd=copy,
            check=True,
        )
        built = sorted(path.name for path in artifacts.iterdir())
        assert "app.py" in built
        assert built == sorted(path.name for path in source.glob("*.py"))
    assert len(functions) == 15


def test_the_api_logs_every_request_to_its_own_group_and_never_what_carries_secrets() -> None:
    """Functions log an answered request only at DEBUG: API Gateway's access log is the record
    of every request, and must not copy Maestra keys, CRM.COM tokens or SyncTV cookies."""
    settings = resources_of_type("AWS::Serverless::HttpApi")["PromoApi"]["Properties"][
        "AccessLogSettings"
    ]
    group = resources_of_type("AWS::Logs::LogGroup")["PromoApiAccessLogs"]

    assert settings["DestinationArn"] == {"Fn::GetAtt": ["PromoApiAccessLogs", "Arn"]}
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    fields = json.loads(settings["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert {"routeKey", "status", "responseLatency", "integrationError"} <= fields.keys()
    assert not [value for value in fields.values() if value.startswith("$request.")]


def test_every_function_has_its_own_log_group_with_retention() -> None:
    functions = resources_of_type("AWS::Serverless::Function")
    groups = resources_of_type("AWS::Logs::LogGroup")

    for name, function in functions.items():
        group_ref = function["Properties"]["LoggingConfig"]["LogGroup"]
        assert group_ref == {"Ref": f"{name}Logs"}, name
        assert groups[f"{name}Logs"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_api_is_throttled() -> None:
    api = resources_of_type("AWS::Serverless::HttpApi")["PromoApi"]["Properties"]

    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert api["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}


@pytest.mark.parametrize("name", ["SyncTvValidateFunction", "MewsGetAllFunction"])
def test_validate_and_get_all_may_write_only_counters(name: str) -> None:
    """Validate counts failed validations, getAll its AccessToken's requests: both only in
    counter items (MISSES#…), and neither may write anything else."""
    function = resources_of_type("AWS::Serverless::Function")[name]
    policies = function["Properties"]["Policies"]
    statements = [s for policy in policies if "Statement" in policy for s in policy["Statement"]]

    assert [p for p in policies if "Statement" not in p] == [
        {"DynamoDBReadPolicy": {"TableName": {"Ref": "PromoTable"}}}
    ]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:UpdateItem"],
            "Resource": {"Fn::GetAtt": ["PromoTable", "Arn"]},
            "Condition": {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{keys.MISSES_PREFIX}*"]}
            },
        }
    ]


def test_a_bulk_adds_stage_expires_after_every_function_that_writes_one_has_timed_out() -> None:
    """A stage's deadline follows the writer's timeout plus a margin: no stage outlives the
    function that wrote it, and none blocks its values much longer."""
    template = load_template()
    expiry = int(
        template["Globals"]["Function"]["Environment"]["Variables"]["STAGED_WRITE_EXPIRY_SECONDS"]
    )
    default = int(template["Globals"]["Function"].get("Timeout", 3))
    timeouts = [
        int(resource["Properties"].get("Timeout", default))
        for resource in resources_of_type("AWS::Serverless::Function").values()
    ]

    assert max(timeouts) + 10 <= expiry <= max(timeouts) * 3


def test_an_upgrade_keeps_the_previous_claim_index_beside_the_new_one_only_when_asked() -> None:
    """The release that switches claims to available_v2 keeps the deployed `available` index
    as the deployed template defines it (one index is added or dropped per stack update, and
    a changed projection is refused); the deploy after the migration drops it. Schema 1's
    first projection (the fixture) is given as a parameter; the default is the last one, the
    projection available_v2 took over."""
    schema_1 = ROOT / "tests" / "integration" / "fixtures" / "template_v1_table.yaml"
    (first,) = [
        index
        for index in create_table_request("promo", path=schema_1)["GlobalSecondaryIndexes"]
        if index["IndexName"] == "available"
    ]
    current = create_table_request("promo")["GlobalSecondaryIndexes"]
    upgrading_from_first = create_table_request(
        "promo",
        parameters={
            "KeepPreviousAvailableIndex": "true",
            "PreviousAvailableIndexProjection": "valid_from,valid_until",
        },
    )
    upgrading_from_last = create_table_request(
        "promo", parameters={"KeepPreviousAvailableIndex": "true"}
    )

    assert upgrading_from_first["GlobalSecondaryIndexes"] == [*current, first]
    assert upgrading_from_last["GlobalSecondaryIndexes"] == [
        *current,
        {**current[0], "IndexName": "available"},
    ]
