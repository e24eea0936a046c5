"""Soft delete: a deleted code keeps its record (nothing a client does destroys one); its
activity becomes DELETED and it leaves the available index, in one conditional write each."""

from collections.abc import Sequence
from uuid import UUID

from promo.domain import clock
from promo.domain.errors import CodesNotFound
from promo.domain.models import ActivityState
from promo.store.codes.reads import CodeReads
from promo.store.codes.transitions import AVAILABLE_ATTRIBUTES
from promo.store.codes.visibility import settled
from promo.store.items import Item, key_of, s
from promo.store.table import TRANSACTION_LIMIT, Table, chunked


class Deletes:
    def __init__(self, table: Table, reads: CodeReads) -> None:
        self._table = table
        self._reads = reads

    def delete(self, tenant_id: str, code_ids: Sequence[UUID], actor: str) -> None:
        """Soft-delete codes by UUID; unknown ids are all named and nothing is deleted."""
        found = self._reads.items_by_uuid(tenant_id, code_ids)
        unknown = [str(code_id) for code_id in code_ids if code_id not in found]
        if unknown:
            raise CodesNotFound(unknown)
        stamped = clock.to_stored(clock.now())
        live = [item for item in found.values() if item["activity"]["S"] != ActivityState.DELETED]
        for chunk in chunked(live, TRANSACTION_LIMIT):
            self._table.transact([self._delete_action(item, stamped, actor) for item in chunk])

    def _delete_action(self, item: Item, stamped: str, actor: str) -> Item:
        condition, settled_values, removals = settled(item.get("staged_batch", {}).get("S"))
        return {
            "Update": {
                "TableName": self._table.name,
                "Key": key_of(item),
                "ConditionExpression": f"attribute_exists(pk) AND {condition}",
                "UpdateExpression": (
                    "SET activity = :deleted, deleted_at = :now, updated_at = :now,"
                    f" updated_by = :actor REMOVE {AVAILABLE_ATTRIBUTES}{removals}"
                ),
                "ExpressionAttributeValues": {
                    ":deleted": s(ActivityState.DELETED),
                    ":now": s(stamped),
                    ":actor": s(actor),
                    **settled_values,
                },
            }
        }
