"""Maestra's answers: a performed step's ``Success`` (or a redeem's ValidationError) and the
error answers, rendered as ``<result>`` XML or JSON with the same names, in the format the client
asked for (``Accept``, else ``Content-Type``).
"""

import uuid
from datetime import datetime
from typing import Any

from lxml import etree

from promo.codecs import json as json_codec
from promo.codecs import xml as xml_codec
from promo.domain import clock
from promo.domain.errors import PromoError
from promo.domain.models import PointOfContact, Pool
from promo.domain.values import render_safe
from promo.http import HttpRequest, HttpResponse
from promo.protocols.maestra.errors import ERRORS, ISSUE_STATUSES, REDEEM_REFUSALS
from promo.protocols.maestra.requests import XML_TYPES, ValidationMessage
from promo.services.issuing import Step, StepOutcome

XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"


def success(outcome: StepOutcome, step: Step) -> dict[str, Any]:
    """The answer to a performed step. Issue outcomes travel in ``issueStatus``; a redeem that
    could not happen is the customer's error (ValidationError), as the page has no status."""
    if step.kind.uses and outcome.refusal is not None:
        return {
            "status": "ValidationError",
            "validationMessages": [
                {
                    "message": REDEEM_REFUSALS.answer(outcome.refusal),
                    "location": "/promoCode/ids/value",
                }
            ],
        }
    return {"status": "Success", "promoCode": promo_code(outcome, step)}


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else clock.format_maestra(moment)


def _contact(contact: PointOfContact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {"ids": {"externalId": contact.external_id}, "name": contact.name}


def _pool(pool: Pool | None, alias: str | None) -> dict[str, Any] | None:
    if pool is None:
        return None if alias is None else {"ids": {"externalId": alias}}
    return {
        "ids": {"externalId": pool.aliases.maestra_external_id or alias},
        "name": pool.name,
        "description": pool.description,
    }


def promo_code(outcome: StepOutcome, step: Step) -> dict[str, Any]:
    """The ``<promoCode>`` block, every field of the page in its order; absent values omitted.
    Stored texts (value, points of contact, pool names) pass through ``render_safe``, so one
    stored before the boundary check still renders, alike in XML and JSON."""
    code = outcome.code
    pool = outcome.pool
    status = "Issued" if outcome.refusal is None else ISSUE_STATUSES.answer(outcome.refusal)
    block: dict[str, Any] = {"issueStatus": status} if not step.kind.uses else {}
    value = code.value if code else step.value
    if value is not None:
        block["ids"] = {"mindboxId": code.number if code else None, "value": value}
    block["pool"] = _pool(pool, step.pool_alias)
    if code is not None:
        block |= {
            "availableFromDateTimeUtc": _stamp(code.validity.start),
            "availableTillDateTimeUtc": _stamp(code.validity.end),
            "isUsed": code.is_spent,
            "usedPointOfContact": _contact(code.used_point_of_contact),
            "usedDateTimeUtc": _stamp(code.used_at),
            "issuedPointOfContact": _contact(code.issued_point_of_contact),
            "issuedDateTimeUtc": _stamp(code.issued_at),
            "blockedDateTimeUtc": _stamp(code.blocked_at),
        }
    pruned: dict[str, Any] = _prune(block)
    return pruned


def _prune(data: Any) -> Any:
    if isinstance(data, dict):
        pruned = {}
        for name, value in data.items():
            if value is not None and (value := _prune(value)) != {}:
                pruned[name] = value
        return pruned
    return render_safe(data) if isinstance(data, str) else data


def _to_xml(parent: etree._Element, data: Any) -> None:
    for name, value in data.items():
        if isinstance(value, list):
            holder = etree.SubElement(parent, name)
            for entry in value:
                _to_xml(etree.SubElement(holder, name[:-1]), entry)  # plural -> singular
        elif isinstance(value, dict):
            _to_xml(etree.SubElement(parent, name), value)
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            xml_codec.child(parent, name, text)


def answer(result: dict[str, Any], status: int, as_xml: bool) -> HttpResponse:
    if as_xml:
        root = etree.Element("result")
        _to_xml(root, result)
        return HttpResponse(status, xml_codec.render(root), XML)
    return HttpResponse(status, json_codec.dumps(result), JSON)


def wants_xml(request: HttpRequest) -> bool:
    accept = request.headers.get("accept", "").lower()
    if "json" in accept and "xml" not in accept:
        return False
    if "xml" in accept and "json" not in accept:
        return True
    return request.media_type("content-type") in XML_TYPES


def refusal(error: PromoError, as_xml: bool) -> HttpResponse:
    status, kind = ERRORS.answer(error)
    if kind == "ValidationError":
        messages = getattr(error, "messages", None) or [
            ValidationMessage(error.message, "/" + (getattr(error, "location", None) or ""))
        ]
        body: dict[str, Any] = {
            "status": kind,
            "validationMessages": [
                {"message": m.message, "location": m.location} for m in messages
            ],
        }
        return answer(body, 200, as_xml)
    message = error.message if status < 500 else "The server could not complete the request."
    body = {
        "status": kind,
        "errorMessage": message,
        "errorId": str(uuid.uuid4()),
        "httpStatusCode": status,
    }
    return answer(body, status, as_xml)
