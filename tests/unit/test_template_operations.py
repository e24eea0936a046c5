"""template.yaml's alarms and dashboard watch every function and chart what the code emits; the
stack runs on its own table or, after a restore, on an existing one."""

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from promo import observability
from promo.store import keys
from tools import alarms
from tools.template import (
    TEMPLATE,
    create_table_request,
    deployed,
    load_template,
    resources_of_type,
)

ACTIONS = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def _alarms() -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in resources_of_type("AWS::CloudWatch::Alarm").items()
    }


def _dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {dimension["Name"]: dimension["Value"] for dimension in alarm["Dimensions"]}


def test_every_function_has_an_errors_and_a_throttles_alarm() -> None:
    watched = {
        (alarm["MetricName"], _dimensions(alarm)["FunctionName"]["Ref"])
        for alarm in _alarms().values()
        if alarm["Namespace"] == "AWS/Lambda"
    }

    for name in resources_of_type("AWS::Serverless::Function"):
        assert ("Errors", name) in watched, name
        assert ("Throttles", name) in watched, name


def test_every_route_has_a_5xx_alarm_on_the_metrics_the_http_api_publishes() -> None:
    """An HTTP API publishes ``5xx`` per route (dimensions ApiId, Stage, Route) only with
    detailed metrics on; the functions answer most failures themselves, which Lambda's
    ``Errors`` never counts."""
    api = resources_of_type("AWS::Serverless::HttpApi")["PromoApi"]["Properties"]
    watched = {
        _dimensions(alarm)["Route"]
        for alarm in _alarms().values()
        if alarm["Namespace"] == "AWS/ApiGateway"
        and alarm["MetricName"] == "5xx"
        and _dimensions(alarm)["ApiId"] == {"Ref": "PromoApi"}
        and _dimensions(alarm)["Stage"] == "$default"
    }
    routes = {
        route
        for function in resources_of_type("AWS::Serverless::Function").values()
        for route in alarms.routes(function)
    }

    assert api["DefaultRouteSettings"]["DetailedMetricsEnabled"] is True
    assert len(routes) == 14
    assert watched == routes


def test_the_async_dead_letter_queue_alarms_as_soon_as_it_holds_a_message() -> None:
    alarm = _alarms()["MaestraAsyncDeadLetterQueueAlarm"]

    assert _dimensions(alarm)["QueueName"] == {
        "Fn::GetAtt": ["MaestraAsyncDeadLetterQueue", "QueueName"]
    }
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )


def test_every_alarm_notifies_the_optional_topic_and_only_when_one_is_given() -> None:
    template = load_template()

    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert template["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }
    assert all(alarm["AlarmActions"] == ACTIONS for alarm in _alarms().values())
    # Silence is not an alarm: a function nobody called has no data, and is not failing.
    assert all(alarm["TreatMissingData"] == "notBreaching" for alarm in _alarms().values())


def test_the_generated_alarms_are_what_the_generator_writes_for_these_functions() -> None:
    """A function added without `python -m tools.alarms` fails here, not in production."""
    assert alarms.current(TEMPLATE.read_text()) == alarms.generated()


def _dashboard() -> dict[str, Any]:
    (dashboard,) = resources_of_type("AWS::CloudWatch::Dashboard").values()
    body, variables = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    settings = {"AWS::Region": "eu-west-1", "PromoApi": "api123", **variables}
    rendered = re.sub(r"\$\{([^}]+)\}", lambda match: settings[match.group(1)], body)
    parsed: dict[str, Any] = json.loads(rendered)
    return parsed


def _widget(title: str) -> list[Any]:
    (widget,) = [w for w in _dashboard()["widgets"] if w["properties"]["title"] == title]
    metrics: list[Any] = widget["properties"]["metrics"]
    return metrics


def _expressions(title: str) -> list[str]:
    return [line[-1]["expression"] for line in _widget(title) if "expression" in line[-1]]


def test_the_dashboard_charts_the_metrics_the_functions_emit_under_their_namespace() -> None:
    environment = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    namespace, service = (
        environment["POWERTOOLS_METRICS_NAMESPACE"],
        environment["POWERTOOLS_SERVICE_NAME"],
    )
    charted = {
        title: [line[:4] for line in _widget(title) if isinstance(line[0], str)]
        for title in (
            "Codes issued per second",
            "Claims answered none available",
            "Conflicting claims (a write lost to another claimer)",
        )
    }

    assert charted == {
        "Codes issued per second": [[namespace, observability.ISSUED_CODES, "service", service]],
        "Claims answered none available": [
            [namespace, observability.NO_CODE_AVAILABLE, "service", service]
        ],
        "Conflicting claims (a write lost to another claimer)": [
            [namespace, observability.CONFLICTING_CLAIMS, "service", service]
        ],
    }
    assert _expressions("Codes issued per second") == ["issued / PERIOD(issued)"]


def test_the_dashboard_shows_latency_percentiles_per_route_and_inventory_per_pool() -> None:
    namespace = load_template()["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]
    latency = 'SEARCH(\'{AWS/ApiGateway,ApiId,Route,Stage} MetricName="Latency" ApiId="api123"\''

    assert _expressions("Latency p50 per route (ms)") == [f"{latency}, 'p50', 60)"]
    assert _expressions("Latency p99 per route (ms)") == [f"{latency}, 'p99', 60)"]
    assert _expressions("Available codes per pool") == [
        f'SEARCH(\'Namespace="{namespace}" MetricName="{observability.POOL_AVAILABLE}"\','
        " 'Minimum', 300)"
    ]


def test_the_index_operations_md_tells_operators_to_add_is_the_one_this_release_queries() -> None:
    """Step 1 of the upgrade pastes this block into the running release's template: it must
    be the index this release queries, or step 2 would change it."""
    text = (TEMPLATE.parent / "docs" / "operations.md").read_text()
    block = text.split("1. **Add `available_v2`", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    (pasted,) = yaml.safe_load(block)
    (index,) = [
        index
        for index in create_table_request("promo")["GlobalSecondaryIndexes"]
        if index["IndexName"] == keys.TableLayout().available_index
    ]

    assert pasted == index


# ---------------------------------------------------------------------- an existing table
# docs/operations.md, "Restoring": a point-in-time restore is a new table, and the stack is
# pointed at it with ExistingTableName and ExistingTableStreamArn.

RESTORED = "promo-codes-prod-restored"
RESTORED_STREAM = (
    f"arn:aws:dynamodb:eu-west-1:123456789012:table/{RESTORED}/stream/2026-12-03T09:41:07.123"
)
ON_RESTORED = {"ExistingTableName": RESTORED, "ExistingTableStreamArn": RESTORED_STREAM}
OWN_TABLE = "PromoTable"

# What each reference to the stack's own table must become on an existing table.
_EXISTING_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ExistingTableName}"
}
REDIRECTED = {
    json.dumps({"Ref": OWN_TABLE}): {"Ref": "ExistingTableName"},
    json.dumps({"Fn::GetAtt": [OWN_TABLE, "Arn"]}): _EXISTING_ARN,
    json.dumps({"Fn::GetAtt": [OWN_TABLE, "StreamArn"]}): {"Ref": "ExistingTableStreamArn"},
}

TreePath = tuple[str | int, ...]


def references_to(
    logical_id: str, node: Any, path: TreePath = ()
) -> Iterator[tuple[TreePath, Any]]:
    """Every place in ``node`` that names the resource ``logical_id``: ``Ref``, ``Fn::GetAtt``
    (either form), ``${logical_id}`` or ``${logical_id.Attribute}`` in an ``Fn::Sub`` string,
    and ``DependsOn``; with the path that leads to it."""
    if isinstance(node, list):
        for index, entry in enumerate(node):
            yield from references_to(logical_id, entry, (*path, index))
        return
    if not isinstance(node, dict):
        return
    target = node.get("Fn::GetAtt")
    if node.get("Ref") == logical_id or (
        target is not None
        and (target[0] if isinstance(target, list) else str(target).split(".")[0]) == logical_id
    ):
        yield path, node
        return
    substituted = node.get("Fn::Sub")
    text = substituted[0] if isinstance(substituted, list) else substituted
    if isinstance(text, str) and re.search(rf"\$\{{{logical_id}(\.[^}}]*)?\}}", text):
        yield path, node
    depends = node.get("DependsOn", [])
    if logical_id in ([depends] if isinstance(depends, str) else depends):
        yield (*path, "DependsOn"), depends
    for key, entry in node.items():
        yield from references_to(logical_id, entry, (*path, key))


def _replaced(document: Any, path: TreePath, value: Any) -> None:
    *parents, last = path
    for key in parents:
        document = document[key]
    document[last] = value


class _NoManagedPolicies:
    """The template names no managed policy by name, so SAM never needs IAM to look one up."""

    def load(self) -> dict[str, str]:
        return {}


def translated(parameters: dict[str, str]) -> dict[str, Any]:
    """SAM's translation of template.yaml, what CloudFormation receives (the policy templates
    and the DynamoDB event expanded into statements and an event source mapping). Code
    locations are stubbed: translating reads no code. The translator comes with aws-sam-cli."""
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(load_template())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/function.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    translation: dict[str, Any] = transform(template, dict(parameters), _NoManagedPolicies())
    return translation


def _as_deployed(form: str, parameters: dict[str, str]) -> dict[str, Any]:
    if form == "template":
        return deployed(parameters)
    return deployed(parameters, template=translated(parameters))


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    # SAM's translation names the partition from the region; no request is made.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


@pytest.mark.parametrize("form", ["template", "SAM's translation"])
def test_on_an_existing_table_the_stack_creates_no_table_and_nothing_reaches_its_own(
    form: str,
) -> None:
    stack = _as_deployed(form, ON_RESTORED)

    assert OWN_TABLE not in stack["Resources"]
    assert [r for r in stack["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"] == []
    assert list(references_to(OWN_TABLE, stack)) == []


@pytest.mark.parametrize("form", ["template", "SAM's translation"])
def test_every_reference_to_the_stacks_table_points_at_the_existing_one_and_nothing_else_changes(
    form: str,
) -> None:
    """The default stack with each reference to its table replaced by the existing table's
    name, ARN or stream ARN, and without the table, is exactly the stack on the existing one:
    a reference left out of the switch, or anything else the switch changed, fails here."""
    own, existing = _as_deployed(form, {}), _as_deployed(form, ON_RESTORED)
    references = list(references_to(OWN_TABLE, own))
    expected = copy.deepcopy(own)
    for path, reference in references:
        assert json.dumps(reference) in REDIRECTED, f"{path}: {reference} has no counterpart"
        _replaced(expected, path, REDIRECTED[json.dumps(reference)])
    del expected["Resources"][OWN_TABLE]

    assert existing == expected
    # Each function reaches the table (environment, policies), and so does the stack's output.
    referring = {path[1] for path, _ in references if path[0] == "Resources"}
    functions = {name for name, r in own["Resources"].items() if r["Type"].endswith("Function")}
    assert functions <= referring
    assert ("Outputs", "TableName", "Value") in {path for path, _ in references}


def test_the_stream_consumer_reads_the_existing_tables_stream() -> None:
    (mapping,) = [
        resource["Properties"]
        for resource in _as_deployed("SAM's translation", ON_RESTORED)["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and resource["Properties"]["FunctionName"] == {"Ref": "ChangeStreamFunction"}
    ]

    assert mapping["EventSourceArn"] == {"Ref": "ExistingTableStreamArn"}
    assert deployed(ON_RESTORED)["Outputs"]["TableName"]["Value"] == {"Ref": "ExistingTableName"}


def test_by_default_the_stack_creates_its_table_and_names_no_existing_one() -> None:
    stack = deployed()
    variables = stack["Globals"]["Function"]["Environment"]["Variables"]
    (event,) = stack["Resources"]["ChangeStreamFunction"]["Properties"]["Events"].values()

    assert load_template()["Parameters"]["ExistingTableName"]["Default"] == ""
    assert load_template()["Parameters"]["ExistingTableStreamArn"]["Default"] == ""
    assert stack["Resources"][OWN_TABLE]["Type"] == "AWS::DynamoDB::Table"
    assert variables["TABLE_NAME"] == {"Ref": OWN_TABLE}
    assert event["Properties"]["Stream"] == {"Fn::GetAtt": [OWN_TABLE, "StreamArn"]}
    assert stack["Outputs"]["TableName"]["Value"] == {"Ref": OWN_TABLE}
    for parameter in ("ExistingTableName", "ExistingTableStreamArn"):
        assert list(references_to(parameter, stack["Resources"])) == [], parameter


def test_switching_to_an_existing_table_keeps_the_stacks_own_table_in_the_account() -> None:
    """The switch removes PromoTable from the stack; Retain makes CloudFormation leave it
    (and its data) in the account instead of deleting it."""
    resource = load_template()["Resources"][OWN_TABLE]

    assert resource["Condition"] == "CreateTable"
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize(
    ("parameters", "refused"),
    [
        ({"ExistingTableName": RESTORED}, "needs ExistingTableStreamArn"),
        ({"ExistingTableStreamArn": RESTORED_STREAM}, "only with ExistingTableName"),
        (
            # The table's ARN where its stream's belongs, the likeliest slip.
            {**ON_RESTORED, "ExistingTableStreamArn": RESTORED_STREAM.split("/stream/")[0]},
            "does not match",
        ),
        ({**ON_RESTORED, "ExistingTableName": "promo codes"}, "does not match"),
    ],
)
def test_an_existing_table_is_refused_without_its_stream_or_in_the_wrong_shape(
    parameters: dict[str, str], refused: str
) -> None:
    with pytest.raises(ValueError, match=refused):
        deployed(parameters)


def test_conditions_leave_out_what_they_guard() -> None:
    """The resolver the tests above rely on: a false condition drops its resources, and an
    Fn::If that picks AWS::NoValue drops the property."""
    quiet, notifying = deployed(), deployed({"AlarmTopicArn": "arn:aws:sns:eu-west-1:1:alarms"})

    assert "EventWebhookRule" not in quiet["Resources"]
    assert "EventWebhookRule" in deployed({"EventWebhookUrl": "https://hooks.example"})["Resources"]
    for name in _alarms():
        assert "AlarmActions" not in quiet["Resources"][name]["Properties"], name
        assert notifying["Resources"][name]["Properties"]["AlarmActions"] == [
            {"Ref": "AlarmTopicArn"}
        ], name


def _restoring_steps() -> str:
    text = (TEMPLATE.parent / "docs" / "operations.md").read_text()
    return text.split("## Restoring from point-in-time recovery", 1)[1].split("\n## ", 1)[0]


def test_the_restore_steps_give_the_restored_table_what_the_template_gives_its_own() -> None:
    """A restore carries neither the stream nor time to live nor recovery: the steps turn them
    on as the template has them, and name the parameters the template takes."""
    properties = load_template()["Resources"][OWN_TABLE]["Properties"]
    steps = _restoring_steps()
    view = properties["StreamSpecification"]["StreamViewType"]
    expiry = properties["TimeToLiveSpecification"]

    assert f"--stream-specification StreamEnabled=true,StreamViewType={view}" in steps
    assert expiry["Enabled"] is True
    assert f"Enabled=true,AttributeName={expiry['AttributeName']}" in steps
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true" in steps
    assert "--deletion-protection-enabled" in steps
    assert (
        '--parameter-overrides ExistingTableName="$RESTORED" ExistingTableStreamArn="$STREAM"'
        in steps
    )
    assert set(ON_RESTORED) <= set(load_template()["Parameters"])
