"""Failed-validation counters: one item per (tenant, caller, window), ``misses`` incremented by
one atomic ``UpdateItem ADD`` that returns the new count, and ``expires_at`` (the table's TTL
attribute) at the window's end, so DynamoDB removes old windows by itself. No read: a counter
is only ever written, and its answer is the count (promo/domain/attempts.py decides)."""

from promo.domain.attempts import MissWindow
from promo.store import keys
from promo.store.items import n
from promo.store.table import Table


class AttemptStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def count_miss(self, tenant_id: str, caller: str, window: MissWindow) -> int:
        """Count one miss of ``caller`` in ``window``; the caller's misses in it so far."""
        attributes = self._table.update(
            Key=keys.misses_key(tenant_id, window.start, caller),
            UpdateExpression="SET expires_at = :end ADD misses :one",
            ExpressionAttributeValues={":end": n(window.end), ":one": n(1)},
            ReturnValues="UPDATED_NEW",
        )
        return int(attributes["misses"]["N"])

    def count_request(self, tenant_id: str, caller: str, window: MissWindow) -> int:
        """Count one request of ``caller`` in ``window`` (a per-credential request limit, such
        as Mews' per AccessToken); its requests in it so far. The counter is an item of the
        same kind as a miss counter (``MISSES#`` key, ``misses`` attribute, TTL at the window's
        end), so the same narrow write grant covers it; ``caller`` names its own kind (e.g.
        ``mews-token:…``), so it never shares a counter with a validate caller."""
        return self.count_miss(tenant_id, caller, window)
