"""Read ``template.yaml``: the single source of the table schema and of the HTTP routes."""

import re
from collections.abc import Mapping
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


def _holds(condition: str, template: dict[str, Any], parameters: Mapping[str, str]) -> bool:
    """Whether the template's condition ``condition`` holds with these parameter values."""
    return _truth(template["Conditions"][condition], template, parameters)


def _truth(expression: Any, template: dict[str, Any], parameters: Mapping[str, str]) -> bool:
    """A condition's expression evaluated: ``Fn::Equals`` of parameters and literals, ``Fn::Not``,
    ``Fn::And``, ``Fn::Or`` and ``Condition`` (the functions conditions and rules use here)."""
    if not isinstance(expression, dict) or len(expression) != 1:
        raise ValueError(f"not a condition: {expression!r}")
    ((function, arguments),) = expression.items()
    if function == "Condition":
        return _holds(arguments, template, parameters)
    if function == "Fn::Equals":
        left, right = (_value(argument, template, parameters) for argument in arguments)
        return bool(left == right)
    if function == "Fn::Not":
        (negated,) = arguments
        return not _truth(negated, template, parameters)
    if function == "Fn::And":
        return all(_truth(argument, template, parameters) for argument in arguments)
    if function == "Fn::Or":
        return any(_truth(argument, template, parameters) for argument in arguments)
    raise ValueError(f"unsupported in a condition: {function}")


def _value(argument: Any, template: dict[str, Any], parameters: Mapping[str, str]) -> Any:
    if isinstance(argument, dict) and set(argument) == {"Ref"}:
        name = argument["Ref"]
        return parameters.get(name, template["Parameters"][name].get("Default"))
    if isinstance(argument, dict):
        raise ValueError(f"unsupported in a condition: {argument!r}")
    return argument


def _check_parameters(template: dict[str, Any], parameters: Mapping[str, str]) -> None:
    """Refuse what CloudFormation refuses before it reads any condition: an unknown parameter,
    or a value outside the parameter's ``AllowedPattern`` or ``AllowedValues``."""
    declared = template.get("Parameters", {})
    unknown = set(parameters) - set(declared)
    if unknown:
        raise ValueError(f"the template has no parameter {', '.join(sorted(unknown))}")
    for name, value in parameters.items():
        pattern = declared[name].get("AllowedPattern")
        if pattern is not None and re.fullmatch(pattern, value) is None:
            raise ValueError(f"{name}: {value!r} does not match {pattern}")
        allowed = declared[name].get("AllowedValues")
        if allowed is not None and value not in [str(entry) for entry in allowed]:
            raise ValueError(f"{name}: {value!r} is not one of {allowed}")


_NO_VALUE = {"Ref": "AWS::NoValue"}


def _chosen(value: Any, template: dict[str, Any], parameters: Mapping[str, str]) -> Any:
    """``value`` with each ``Fn::If`` replaced by the branch its condition picks, and each
    property or list entry that came out ``AWS::NoValue`` left out."""
    if isinstance(value, list):
        entries = [_chosen(entry, template, parameters) for entry in value]
        return [entry for entry in entries if entry != _NO_VALUE]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"}:
        condition, then, otherwise = value["Fn::If"]
        branch = then if _holds(condition, template, parameters) else otherwise
        return _chosen(branch, template, parameters)
    chosen = {key: _chosen(entry, template, parameters) for key, entry in value.items()}
    return {key: entry for key, entry in chosen.items() if entry != _NO_VALUE}


def deployed(
    parameters: Mapping[str, str] | None = None,
    path: Path = TEMPLATE,
    template: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The template as CloudFormation acts on it with ``parameters`` (each missing one at its
    default): the resources and outputs whose condition is false left out, every ``Fn::If``
    replaced by its chosen branch. References to parameters stay references. ``template``: a
    document already read (SAM's translation of this one, say) instead of ``path``."""
    document = load_template(path) if template is None else template
    given = parameters or {}
    _check_parameters(document, given)
    rules = document.get("Rules", {})
    for name, rule in rules.items():
        if "RuleCondition" in rule and not _truth(rule["RuleCondition"], document, given):
            continue
        for assertion in rule["Assertions"]:
            if not _truth(assertion["Assert"], document, given):
                raise ValueError(f"rule {name}: {assertion.get('AssertDescription', 'refused')}")
    resolved: dict[str, Any] = {}
    for section, content in document.items():
        if section in ("Resources", "Outputs"):
            content = {
                name: entry
                for name, entry in content.items()
                if "Condition" not in entry or _holds(entry["Condition"], document, given)
            }
        if section not in ("Parameters", "Conditions", "Rules"):
            content = _chosen(content, document, given)
        resolved[section] = content
    return resolved


def _substituted(value: Any, template: dict[str, Any], parameters: Mapping[str, str]) -> Any:
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


def create_table_request(
    table_name: str, path: Path = TEMPLATE, parameters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``CreateTable`` arguments for the template's one table, under another name, as the
    stack would make it with ``parameters`` (the template's defaults otherwise).

    Only the schema is taken (keys, attributes, indexes, billing) and the change stream
    (DynamoDB Local serves it, and ``make run`` reads it); protection, encryption, recovery and
    TTL are account-side settings DynamoDB Local and moto do not model.
    """
    given = parameters or {}
    resources = deployed(given, path)["Resources"].values()
    tables = [resource for resource in resources if resource["Type"] == "AWS::DynamoDB::Table"]
    if len(tables) != 1:
        raise ValueError(f"template.yaml must define exactly one table, found {len(tables)}")
    properties = tables[0]["Properties"]
    request: dict[str, Any] = {
        "TableName": table_name,
        "BillingMode": properties["BillingMode"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
    }
    if properties.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = _substituted(
            properties["GlobalSecondaryIndexes"], load_template(path), given
        )
    stream = properties.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    return request
