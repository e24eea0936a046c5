"""Maestra (Mindbox) v3 operations: issue a promo code by value or from a pool, and redeem.

Contract and choices where it is silent: docs/protocols/maestra.md. Handlers read
``from promo.protocols import maestra`` and use the names below.
"""

from promo.protocols.maestra.answers import success
from promo.protocols.maestra.auth import MaestraCaller
from promo.protocols.maestra.endpoint import endpoint
from promo.protocols.maestra.queue_message import from_message, to_message
from promo.protocols.maestra.requests import OperationBody, OperationCall

__all__ = [
    "MaestraCaller",
    "OperationBody",
    "OperationCall",
    "endpoint",
    "from_message",
    "success",
    "to_message",
]
