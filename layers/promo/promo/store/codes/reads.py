"""Reading codes: by value (one strongly consistent read), by id (pointer, then code), and
listing in creation order. A code staged by a bulk add not (yet) committed does not exist here."""

import heapq
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from promo.domain import clock
from promo.domain.ids import number_of
from promo.domain.models import Code
from promo.store import keys
from promo.store.codes.naming import CodeKeys, pointed_value
from promo.store.codes.visibility import COMMITTED, BatchOutcomes, Snapshot
from promo.store.items import Item, code_from_item, s
from promo.store.table import Table


class CodeReads:
    def __init__(self, table: Table, outcomes: BatchOutcomes, code_keys: CodeKeys) -> None:
        self._table = table
        self._outcomes = outcomes
        self._keys = code_keys
        self._listing_index = keys.TableLayout().listing_index

    def get(self, tenant_id: str, value: str) -> Code | None:
        """The code with this value: one strongly consistent read (two for a code an
        insensitive tenant held before its switch: its pointer, then the code)."""
        item = self._table.get(self._keys.key(tenant_id, value))
        target = None if item is None else pointed_value(item)
        if target is not None:
            item = self._table.get(keys.code_key(tenant_id, target))
        if item is None:
            return None
        outcome = self._outcomes.settle(item["tenant"]["S"], item)
        return code_from_item(item) if outcome == COMMITTED else None

    def get_by_number(self, tenant_id: str, number: int) -> Code | None:
        pointer = self._table.get(keys.number_key(tenant_id, number))
        code = None if pointer is None else self.get(tenant_id, pointer["value"]["S"])
        # A pointer left by an add that never committed may name a value added later as
        # another code: only the code the pointer was written for counts.
        return code if code is not None and code.number == number else None

    def get_by_uuid(self, tenant_id: str, code_id: UUID) -> Code | None:
        return self.get_many_by_uuid(tenant_id, [code_id]).get(code_id)

    def get_many_by_uuid(
        self, tenant_id: str, code_ids: Sequence[UUID], snapshot: Snapshot | None = None
    ) -> dict[UUID, Code]:
        """The codes of this tenant among ``code_ids``; unknown and foreign ids are left out."""
        items = self.items_by_uuid(tenant_id, code_ids, snapshot)
        return {code_id: code_from_item(item) for code_id, item in items.items()}

    def items_by_uuid(
        self, tenant_id: str, code_ids: Sequence[UUID], snapshot: Snapshot | None = None
    ) -> dict[UUID, Item]:
        seen = snapshot or self._outcomes.snapshot()
        numbers = {number_of(code_id): code_id for code_id in code_ids}
        numbers.pop(None, None)
        pointers = self._table.batch_get(
            [keys.number_key(tenant_id, number) for number in numbers if number is not None]
        )
        wanted = set(code_ids)
        values = {p["value"]["S"] for p in pointers if UUID(p["uuid"]["S"]) in wanted}
        items = self._table.batch_get([self._keys.key(tenant_id, value) for value in values])
        targets = [target for item in items if (target := pointed_value(item)) is not None]
        if targets:  # codes an insensitive tenant held before its switch
            items += self._table.batch_get([keys.code_key(tenant_id, v) for v in targets])
        found: dict[UUID, Item] = {}
        for item in items:
            if pointed_value(item) is not None:
                continue
            # A pointer left by an add that never committed may name a value added later as
            # another code: only the code the pointer was written for counts.
            code_id = UUID(item["uuid"]["S"])
            if code_id in wanted and seen.visible(item):
                found[code_id] = item
        return found

    def existing_values(self, tenant_id: str, values: Sequence[str]) -> set[str]:
        """Which of ``values`` the tenant already holds (staged ones included: they are taken),
        as the tenant matches them (an insensitive tenant holds ``abc`` if it holds ``ABC``)."""
        wanted = {self._keys.keyed_value(tenant_id, v): v for v in values}
        items = self._table.batch_get([keys.code_key(tenant_id, keyed) for keyed in wanted])
        return {wanted[item["pk"]["S"].split("#V#", 1)[1]] for item in items}

    def added_in_batch(
        self, tenant_id: str, pool_id: str, created_at: str, batch_id: str
    ) -> list[Item]:
        """The codes of one pool that the bulk add ``batch_id`` created at ``created_at``:
        they share that creation time, so they are one stretch of the pool's listing."""
        entries = self._table.paginate(
            self._table.query,
            IndexName=self._listing_index,
            KeyConditionExpression="list_pk = :partition AND begins_with(list_sk, :created)",
            ExpressionAttributeValues={
                ":partition": s(keys.listing_partition(tenant_id, pool_id)),
                ":created": s(f"{created_at}#"),
            },
        )
        items = self._table.batch_get([{"pk": e["pk"], "sk": e["sk"]} for e in entries])
        return [item for item in items if item.get("added_batch", {}).get("S") == batch_id]

    def list(
        self,
        tenant_id: str,
        pool_ids: Sequence[str],
        before: str | None = None,
        inclusive: bool = False,
        snapshot: Snapshot | None = None,
    ) -> Iterator[tuple[str, Code]]:
        """Codes of the given pools, newest first, with each one's position for a cursor.

        Positions come from creation time and the integer id, which never change, so a cursor
        taken from one page neither skips nor repeats codes updated or deleted meanwhile. A
        bulk add is listed whole or not at all: ``snapshot`` decides each batch once (one per
        call unless the caller shares one across the reads of an answer).
        """
        seen = snapshot or self._outcomes.snapshot()
        streams = [self._list_pool(tenant_id, p, before, inclusive, seen) for p in pool_ids]
        yield from heapq.merge(*streams, key=lambda entry: entry[0], reverse=True)

    def _list_pool(
        self, tenant_id: str, pool_id: str, before: str | None, inclusive: bool, seen: Snapshot
    ) -> Iterator[tuple[str, Code]]:
        condition = "list_pk = :partition"
        values: Item = {":partition": s(keys.listing_partition(tenant_id, pool_id))}
        if before is not None:
            condition += f" AND list_sk {'<=' if inclusive else '<'} :before"
            values[":before"] = s(before)
        request: dict[str, Any] = {
            "IndexName": self._listing_index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": 100,
        }
        while True:
            page = self._table.query(**request)
            entries = []
            for item in self._table.batch_get(
                [{"pk": i["pk"], "sk": i["sk"]} for i in page.get("Items", [])]
            ):
                if seen.visible(item):
                    entries.append((item["list_sk"]["S"], code_from_item(item)))
            yield from sorted(entries, key=lambda entry: entry[0], reverse=True)
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def position(code: Code) -> str:
    """A code's place in listings (what ``CodeReads.list`` yields beside it)."""
    return keys.listing_position(clock.to_stored(code.audit.created_at), code.number)
