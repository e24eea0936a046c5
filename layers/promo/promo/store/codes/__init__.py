"""Promo codes in DynamoDB, one module per mechanism:

- ``claims``: the exactly-once claim of any available code of a pool, and its candidate cache;
- ``bulk_staging``: adds, all or nothing, large ones staged and committed by one record;
- ``visibility``: whether a staged code exists yet (its batch's outcome), for every reader;
- ``transitions``: issue, redeem and block by value, each one conditional write;
- ``rollbacks``: one redemption given back, never losing or doubling a use;
- ``reservations``: a use held for a holder until a deadline, released or taken over after;
- ``receipts``: idempotency receipts written in the same transaction as the change;
- ``reads``: lookups by value and id, and listing in creation order;
- ``deletes``: soft delete;
- ``naming``: where a tenant keys the code of a value (case-insensitive tenants key its fold).

``CodeStore`` is the one face the services use.
"""

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from uuid import UUID

from promo.domain.events import CodeImage
from promo.domain.models import Code, Issuance, NewCode, Pool
from promo.settings import Settings
from promo.store.change_records import code_image
from promo.store.codes.bulk_staging import BulkAdds
from promo.store.codes.claims import Claims
from promo.store.codes.deletes import Deletes
from promo.store.codes.naming import CaseFolding, CodeKeys, TenantRules
from promo.store.codes.reads import CodeReads, position
from promo.store.codes.reservations import Reservations
from promo.store.codes.rollbacks import Rollbacks
from promo.store.codes.transitions import Transitions
from promo.store.codes.visibility import BatchOutcomes, Snapshot
from promo.store.table import Table


class CodeStore:
    def __init__(self, table: Table, settings: Settings, rules: TenantRules) -> None:
        """``rules``: each tenant's case rule, as this function knows it (``CatalogStore``)."""
        self.table = table
        self.outcomes = BatchOutcomes(table)
        code_keys = CodeKeys(rules)
        self._adds = BulkAdds(table, settings, self.outcomes, code_keys)
        self._transitions = Transitions(table, self.outcomes, self._adds, code_keys)
        self._claims = Claims(table, settings, self.outcomes, self._transitions)
        self._reads = CodeReads(table, self.outcomes, code_keys)
        self._deletes = Deletes(table, self._reads)
        self._rollbacks = Rollbacks(table, self.outcomes, code_keys)
        self._reservations = Reservations(table, self.outcomes, code_keys)
        self._folding = CaseFolding(table)

    # adding
    def add(
        self, tenant_id: str, pools: Mapping[str, Pool], new_codes: Sequence[NewCode], actor: str
    ) -> list[Code]:
        return self._adds.add(tenant_id, pools, new_codes, actor)

    def created_count(self, tenant_id: str) -> int:
        return self._adds.created_count(tenant_id)

    def point_folded(self, tenant_id: str, values: Sequence[str]) -> None:
        """Make codes keyed by these values reachable by their fold (a switch to insensitive)."""
        self._folding.point_folded(tenant_id, values)

    def unpoint_folded(self, tenant_id: str, values: Sequence[str]) -> None:
        """Take back what ``point_folded`` wrote (a switch given up)."""
        self._folding.unpoint_folded(tenant_id, values)

    # issuing and the lifecycle
    def claim(self, pool: Pool, issuance: Issuance) -> Code:
        return self._claims.claim(pool, issuance)

    def issue(
        self, tenant_id: str, value: str, issuance: Issuance, pool: Pool | None = None
    ) -> Code:
        return self._transitions.issue(tenant_id, value, issuance, pool)

    def create_issued(self, pool: Pool, new: NewCode, issuance: Issuance) -> Code:
        return self._transitions.create_issued(pool, new, issuance)

    def redeem(self, tenant_id: str, value: str, issuance: Issuance) -> Code:
        return self._transitions.redeem(tenant_id, value, issuance)

    def roll_back_redemption(
        self, tenant_id: str, value: str, issuance: Issuance, reason: str
    ) -> Code:
        return self._rollbacks.roll_back_redemption(tenant_id, value, issuance, reason)

    def reserve(self, tenant_id: str, value: str, issuance: Issuance, until: datetime) -> Code:
        return self._reservations.reserve(tenant_id, value, issuance, until)

    def release(self, tenant_id: str, value: str, issuance: Issuance) -> Code:
        return self._reservations.release(tenant_id, value, issuance)

    def block(self, tenant_id: str, value: str, at: datetime, actor: str) -> Code:
        return self._transitions.block(tenant_id, value, at, actor)

    def delete(self, tenant_id: str, code_ids: Sequence[UUID], actor: str) -> None:
        self._deletes.delete(tenant_id, code_ids, actor)

    def added_in_batch(
        self, tenant_id: str, pool_id: str, created_at: str, batch_id: str
    ) -> list[CodeImage]:
        """The codes of ``pool_id`` a committed bulk add created, as its commit announces them."""
        items = self._reads.added_in_batch(tenant_id, pool_id, created_at, batch_id)
        return sorted((code_image(item) for item in items), key=lambda code: code.number)

    # reading
    def get(self, tenant_id: str, value: str) -> Code | None:
        return self._reads.get(tenant_id, value)

    def get_by_number(self, tenant_id: str, number: int) -> Code | None:
        return self._reads.get_by_number(tenant_id, number)

    def get_by_uuid(self, tenant_id: str, code_id: UUID) -> Code | None:
        return self._reads.get_by_uuid(tenant_id, code_id)

    def get_many_by_uuid(
        self, tenant_id: str, code_ids: Sequence[UUID], snapshot: Snapshot | None = None
    ) -> dict[UUID, Code]:
        return self._reads.get_many_by_uuid(tenant_id, code_ids, snapshot)

    def existing_values(self, tenant_id: str, values: Sequence[str]) -> set[str]:
        return self._reads.existing_values(tenant_id, values)

    def list(
        self,
        tenant_id: str,
        pool_ids: Sequence[str],
        before: str | None = None,
        inclusive: bool = False,
        snapshot: Snapshot | None = None,
    ) -> Iterator[tuple[str, Code]]:
        return self._reads.list(tenant_id, pool_ids, before, inclusive, snapshot)

    def snapshot(self) -> Snapshot:
        """One visibility decision per bulk add, for the reads of one answer."""
        return self.outcomes.snapshot()

    position = staticmethod(position)
