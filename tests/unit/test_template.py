"""template.yaml carries the guarantees docs/architecture.md promises about the deployed stack."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from promo.store import keys
from tools.template import ROOT, create_table_request, deployed, load_template, resources_of_type


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
    assert len(functions) == 16


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
    function = deployed()["Resources"][name]
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


# ---------------------------------------------------------------------- the change stream


def resource(name: str) -> dict[str, Any]:
    found: dict[str, Any] = load_template()["Resources"][name]
    return found


def test_the_table_streams_new_and_old_images() -> None:
    assert table()["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_the_stream_consumer_retries_a_bounded_number_of_times_and_keeps_what_it_gives_up() -> None:
    function = deployed()["Resources"]["ChangeStreamFunction"]
    (event,) = function["Properties"]["Events"].values()
    mapping = event["Properties"]

    assert function["Properties"]["CodeUri"] == "functions/change_stream/"
    assert event["Type"] == "DynamoDB"
    assert mapping["Stream"] == {"Fn::GetAtt": ["PromoTable", "StreamArn"]}
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < mapping["MaximumRetryAttempts"] <= 20
    # A batch's markers and its pools' counts are one transaction of at most 100 items.
    assert 1 < mapping["BatchSize"] <= 100
    assert mapping["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["ChangeStreamFailureQueue", "Arn"]},
    }
    assert resource("ChangeStreamFailureQueue")["Type"] == "AWS::SQS::Queue"
    # Ordered per shard as Lambda delivers by default; the markers need no order anyway.
    assert mapping.get("ParallelizationFactor", 1) == 1


def test_the_stream_consumer_is_invoked_for_codes_and_bulk_add_records_only() -> None:
    from promo.store.change_records import RELEVANT_SORT_KEYS
    from tools.local_stream import matches

    function = resources_of_type("AWS::Serverless::Function")["ChangeStreamFunction"]
    (event,) = function["Properties"]["Events"].values()
    patterns = [f["Pattern"] for f in event["Properties"]["FilterCriteria"]["Filters"]]

    def record(sort_key: str) -> dict[str, Any]:
        return {"dynamodb": {"Keys": {"pk": {"S": "x"}, "sk": {"S": sort_key}}}}

    assert [key for key in ("CODE", "BATCH") if matches(patterns, record(key))] == list(
        RELEVANT_SORT_KEYS
    )
    # Its own writes (counts, markers) and everything else never invoke it.
    for other in (keys.COUNTS_SORT_KEY, keys.APPLIED_SORT_KEY, "ID", "RECEIPT", "MISSES", "CRED"):
        assert not matches(patterns, record(other)), other


def test_the_stream_consumer_may_write_only_its_own_items_and_publish_to_the_bus() -> None:
    function = deployed()["Resources"]["ChangeStreamFunction"]
    policies = function["Properties"]["Policies"]
    statements = [s for policy in policies if "Statement" in policy for s in policy["Statement"]]

    assert {"EventBridgePutEventsPolicy": {"EventBusName": {"Ref": "EventBus"}}} in policies
    assert statements == [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:UpdateItem", "dynamodb:PutItem"],
            "Resource": {"Fn::GetAtt": ["PromoTable", "Arn"]},
            "Condition": {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{keys.INVENTORY_PREFIX}*"]}
            },
        }
    ]
    assert keys.pool_counts_key("t", "p")["pk"]["S"].startswith(keys.INVENTORY_PREFIX)
    assert keys.applied_record_key("e")["pk"]["S"].startswith(keys.INVENTORY_PREFIX)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["EVENT_BUS_NAME"] == {"Ref": "EventBus"}


def test_the_stack_has_an_event_bus_and_a_webhook_only_when_a_url_is_given() -> None:
    from promo.domain.events import SOURCE

    template = load_template()
    parameter = template["Parameters"]["EventWebhookUrl"]
    webhook = ["EventWebhookConnection", "EventWebhookDestination", "EventWebhookRule"]

    assert resource("EventBus")["Type"] == "AWS::Events::EventBus"
    assert parameter["Default"] == ""
    assert template["Conditions"]["HasEventWebhook"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "EventWebhookUrl"}, ""]}]
    }
    for name in [*webhook, "EventWebhookRole", "EventWebhookDeadLetterQueue"]:
        assert resource(name)["Condition"] == "HasEventWebhook", name
    assert resource("EventWebhookDestination")["Properties"]["InvocationEndpoint"] == {
        "Ref": "EventWebhookUrl"
    }
    rule = resource("EventWebhookRule")["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["EventPattern"] == {"source": [SOURCE]}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["EventWebhookDestination", "Arn"]}


ALARM_ACTIONS = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def test_alarm_notifications_go_to_an_optional_topic() -> None:
    template = load_template()

    assert template["Parameters"]["AlarmTopicArn"] == {
        "Type": "String",
        "Default": "",
        "Description": "SNS topic ARN that receives alarm notifications (empty: none)",
    }
    assert template["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }


@pytest.mark.parametrize(
    ("alarm", "namespace", "metric", "dimensions"),
    [
        (
            "ChangeStreamIteratorAgeAlarm",
            "AWS/Lambda",
            "IteratorAge",
            [{"Name": "FunctionName", "Value": {"Ref": "ChangeStreamFunction"}}],
        ),
        (
            "ChangeStreamFailuresAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [
                {
                    "Name": "QueueName",
                    "Value": {"Fn::GetAtt": ["ChangeStreamFailureQueue", "QueueName"]},
                }
            ],
        ),
        ("PoolLowAlarm", "PromoCodes", "PoolsLow", [{"Name": "service", "Value": "promo-codes"}]),
        (
            "PoolEmptyAlarm",
            "PromoCodes",
            "PoolsEmpty",
            [{"Name": "service", "Value": "promo-codes"}],
        ),
    ],
)
def test_each_alarm_of_the_change_stream_watches_its_metric_and_notifies_the_topic(
    alarm: str, namespace: str, metric: str, dimensions: list[dict[str, Any]]
) -> None:
    properties = resource(alarm)["Properties"]
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]

    assert (properties["Namespace"], properties["MetricName"]) == (namespace, metric)
    assert properties["Dimensions"] == dimensions
    assert properties["AlarmActions"] == ALARM_ACTIONS
    assert properties["TreatMissingData"] == "notBreaching"
    if namespace == "PromoCodes":  # the metrics the consumer emits: any fall is an alarm
        assert namespace == variables["POWERTOOLS_METRICS_NAMESPACE"]
        assert dimensions[0]["Value"] == variables["POWERTOOLS_SERVICE_NAME"]
        assert (properties["Statistic"], properties["Threshold"]) == ("Sum", 0)
        assert properties["ComparisonOperator"] == "GreaterThanThreshold"
