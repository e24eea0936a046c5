"""The JSON Schemas of docs/events.md, each by its title (an event's kind, or ``envelope``)."""

import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from tools.template import ROOT

EVENTS_DOC = ROOT / "docs" / "events.md"
_BLOCK = re.compile(r"^```json\n(.*?)^```", re.M | re.S)


@cache
def schemas() -> dict[str, dict[str, Any]]:
    found = [json.loads(block) for block in _BLOCK.findall(EVENTS_DOC.read_text())]
    return {schema["title"]: schema for schema in found if "$schema" in schema}


def problems(kind: str, document: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``document`` as the schema titled ``kind`` describes it."""
    validator = Draft202012Validator(
        schemas()[kind], format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]
