"""Read ``template.yaml``: the single source of the table schema and of the HTTP routes."""

from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (``!Ref X``) as their long form (``{"Ref": X}``)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(
            None, None, f"unexpected !{suffix}", node.start_mark
        )
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


@cache
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as stream:
        document: dict[str, Any] = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506
    return document


def resources_of_type(resource_type: str, path: Path = TEMPLATE) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = load_template(path)["Resources"]
    return {name: r for name, r in resources.items() if r["Type"] == resource_type}


def _holds(condition: str, template: dict[str, Any], parameters: dict[str, str]) -> bool:
    """Whether a condition of the form ``!Equals [!Ref Parameter, "value"]`` holds."""
    reference, value = template["Conditions"][condition]["Fn::Equals"]
    name = reference["Ref"]
    return bool(parameters.get(name, template["Parameters"][name]["Default"]) == value)


def _substituted(value: Any, template: dict[str, Any], parameters: dict[str, str]) -> Any:
    """``value`` with every ``!Ref Parameter`` replaced by the parameter's value."""
    if isinstance(value, list):
        return [_substituted(entry, template, parameters) for entry in value]
    if not isinstance(value, dict):
        return value
    name = str(value.get("Ref", ""))
    declared = template.get("Parameters", {}).get(name)
    if declared is not None:
        given = str(parameters.get(name, declared["Default"]))
        return given.split(",") if declared["Type"] == "CommaDelimitedList" else given
    return {key: _substituted(entry, template, parameters) for key, entry in value.items()}


def _resolved(
    entries: list[Any], template: dict[str, Any], parameters: dict[str, str]
) -> list[Any]:
    """A list with each ``!If [condition, then, !Ref AWS::NoValue]`` entry resolved."""
    resolved = []
    for entry in entries:
        if "Fn::If" in entry:
            condition, then, otherwise = entry["Fn::If"]
            entry = then if _holds(condition, template, parameters) else otherwise
        if entry != {"Ref": "AWS::NoValue"}:
            resolved.append(_substituted(entry, template, parameters))
    return resolved


def create_table_request(
    table_name: str, path: Path = TEMPLATE, parameters: dict[str, str] | None = None
) -> dict[str, Any]:
    """``CreateTable`` arguments for the template's one table, under another name, as the
    stack would make it with ``parameters`` (the template's defaults otherwise).

    Only the schema is taken (keys, attributes, indexes, billing) and the change stream
    (DynamoDB Local serves it, and ``make run`` reads it); protection, encryption, recovery and
    TTL are account-side settings DynamoDB Local and moto do not model.
    """
    tables = resources_of_type("AWS::DynamoDB::Table", path)
    if len(tables) != 1:
        raise ValueError(f"template.yaml must define exactly one table, found {len(tables)}")
    properties = next(iter(tables.values()))["Properties"]
    request: dict[str, Any] = {
        "TableName": table_name,
        "BillingMode": properties["BillingMode"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
    }
    if properties.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = _resolved(
            properties["GlobalSecondaryIndexes"], load_template(path), parameters or {}
        )
    stream = properties.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    return request
