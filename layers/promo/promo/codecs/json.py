"""JSON in and out: strict parsing into pydantic v2 models."""

import json
import math
from typing import Any

from pydantic import BaseModel, ValidationError

from promo.domain.errors import InvalidRequest, MalformedRequest

MAX_BODY_BYTES = 1024 * 1024


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise MalformedRequest(f"Property {repeated!r} appears more than once.")
    return document


def loads(body: bytes) -> Any:
    """Parsed JSON, refusing oversized bodies, duplicate keys, huge numbers and deep nesting."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedRequest(f"JSON body larger than {MAX_BODY_BYTES} bytes.")
    try:
        return json.loads(
            body,
            object_pairs_hook=_refuse_duplicate_keys,
            parse_constant=_refuse_constant,
            parse_float=_finite,
        )
    except MalformedRequest:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedRequest(f"Malformed JSON: {_describe(exc)}") from None


def _finite(text: str) -> float:
    """A JSON number as a float, refusing ones too large to be one (1e999999 is not infinity)."""
    number = float(text)
    if not math.isfinite(number):
        raise MalformedRequest("A number is too large.")
    return number


def _refuse_constant(name: str) -> Any:
    raise MalformedRequest(f"{name} is not a JSON number.")


def _describe(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "number too large" if "digits" in str(exc) else "invalid document"


def built[M: BaseModel](model: type[M]) -> type[M]:
    """``model`` with its validator built now. Request models defer their build (each codec
    defines every operation's, and a function validates one), so a function's endpoint builds
    its own at import: it is paid at cold start, and the other operations' never are."""
    model.model_rebuild()
    return model


def parse[M: BaseModel](body: bytes, model: type[M]) -> M:
    """Body → validated model; the first validation problem becomes InvalidRequest."""
    return validate(loads(body), model)


def validate[M: BaseModel](document: Any, model: type[M]) -> M:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problem = exc.errors(include_url=False, include_input=False)[0]
        location = ".".join(str(part) for part in problem["loc"]) or None
        message = problem["msg"]
        raise InvalidRequest(f"{location}: {message}" if location else message, location) from None


def dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
