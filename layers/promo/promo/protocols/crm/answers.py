"""CRM.COM's answers: every one is ``{"data": …, "status": {"code", "description",
"message"}}``; request_promo_code's ``data`` is the promo code, limited to ``fields_set``."""

from datetime import datetime
from typing import Any

from promo.codecs import json as json_codec
from promo.domain import clock
from promo.domain.errors import PoolNotFound
from promo.domain.models import Code, CodeState, PointOfContact, Pool
from promo.domain.values import render_safe
from promo.http import HttpResponse
from promo.protocols.crm.auth import CrmCaller
from promo.protocols.crm.errors import CrmStatus

_JSON = "application/json; charset=utf-8"

_LIFE_CYCLE = {
    CodeState.AVAILABLE: "EFFECTIVE",
    CodeState.ISSUED: "EFFECTIVE",
    CodeState.USED: "USED",
    CodeState.BLOCKED: "NOT_EFFECTIVE",
}


def _date(moment: datetime | None) -> str | None:
    return None if moment is None else clock.format_crm(moment)


def _present(**attributes: str | None) -> dict[str, str]:
    # CRM.COM leaves out what a user or unit object does not know (the page's example).
    # Stored texts always render (render_safe), as in every other protocol's answers.
    return {name: render_safe(value) for name, value in attributes.items() if value}


def _user(actor: str, caller: CrmCaller) -> dict[str, str]:
    if actor == caller.actor:
        return _present(
            id=caller.username,
            username=caller.username,
            person_name=caller.person_name,
            email=caller.email,
        )
    # Another user, or another protocol's credential.
    name = render_safe(actor.removeprefix("crm:"))
    return {"id": name, "username": name}


def _unit(unit: PointOfContact | None) -> dict[str, str] | None:
    if unit is None:
        return None
    return _present(id=unit.external_id, name=unit.name or unit.external_id)


def campaign(pool: Pool) -> dict[str, Any]:
    crm = pool.aliases.crm_campaign
    if crm is None:
        raise PoolNotFound
    named = {
        "id": crm.id,
        "name": crm.name,
        "alternative_code": crm.alternative_code,
        "description": crm.description,
        "long_description": crm.long_description,
        "short_description": crm.short_description,
        "type": crm.type,
    }
    return {name: None if text is None else render_safe(text) for name, text in named.items()}


def promo_code(
    code: Code, pool: Pool, caller: CrmCaller, fields_set: tuple[str, ...] | None
) -> dict[str, Any]:
    """request_promo_code's ``data``, limited to ``fields_set``."""
    audit = code.audit
    by_caller = audit.updated_by == caller.actor
    data = {
        "id": code.uuid.hex.upper(),
        "code": render_safe(code.value),
        "life_cycle_state": "NOT_EFFECTIVE" if code.is_deleted else _LIFE_CYCLE[code.state],
        "expiration_date": _date(code.validity.end),
        "promotion_campaign": campaign(pool),
        "log_information": {
            "created_date": _date(audit.created_at),
            "updated_date": _date(audit.updated_at),
            "created_by_unit": None,  # codes are created by imports and other protocols
            "created_by_user": _user(audit.created_by, caller),
            "updated_by_unit": _unit(code.issued_point_of_contact if by_caller else None),
            "updated_by_user": _user(audit.updated_by, caller),
        },
    }
    return select(data, fields_set)


def select(data: dict[str, Any], fields_set: tuple[str, ...] | None) -> dict[str, Any]:
    """``data`` limited to ``fields_set``: top-level names keep a field whole, dotted names
    (``promotion_campaign.name``) keep part of an object; unknown names are ignored."""
    if fields_set is None:
        return data
    tree: dict[str, Any] = {}
    for path in fields_set:
        node: dict[str, Any] | None = tree
        parts = [part.strip() for part in path.split(".")]
        for index, part in enumerate(parts):
            if node is None:  # an ancestor is already kept whole
                break
            if index == len(parts) - 1:
                node[part] = None  # keep whole
            else:
                node = node.setdefault(part, {})
    return _prune(data, tree)


def _prune(data: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    kept = {}
    for name, value in data.items():
        if name not in tree:
            continue
        wanted = tree[name]
        kept[name] = _prune(value, wanted) if wanted and isinstance(value, dict) else value
    return kept


def envelope(
    http_status: int, data: Any, code: str, description: str, message: str
) -> HttpResponse:
    status = {"code": code, "description": description, "message": message}
    return HttpResponse(http_status, json_codec.dumps({"data": data, "status": status}), _JSON)


def ok(data: Any) -> HttpResponse:
    return envelope(200, data, "OK", "", "")


def error(status: CrmStatus, message: str) -> HttpResponse:
    return envelope(status.http_status, None, status.code, status.description, message)
