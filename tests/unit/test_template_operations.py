"""template.yaml's alarms and dashboard watch every function and chart what the code emits."""

import json
import re
from typing import Any

import yaml

from promo import observability
from promo.store import keys
from tools import alarms
from tools.template import TEMPLATE, create_table_request, load_template, resources_of_type

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
