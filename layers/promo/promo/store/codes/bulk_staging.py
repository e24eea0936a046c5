"""Adding codes, all or nothing: every code of an add, or none and every conflicting value named.

Up to 50 codes (100 items with their id pointers) are one DynamoDB transaction. Larger adds
are staged: every code is written in its final form plus a marker naming its batch, the
batch's integer ids and pools, in parallel transactions conditional on the value being free,
its id pointer once it has landed, and the whole batch becomes visible at once when one commit
record is written (``visibility``). A failed or abandoned stage is deleted, pointers first.
"""

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from promo.domain import clock
from promo.domain.errors import ConcurrentChange, DuplicateValues, StoreUnavailable
from promo.domain.ids import code_uuid
from promo.domain.models import ActivityState, Code, CodeState, NewCode, Pool, Window
from promo.settings import Settings
from promo.store import keys
from promo.store.codes.naming import CodeKeys
from promo.store.codes.visibility import (
    ABORTED,
    COMMITTED,
    NEW_ITEM,
    BatchOutcomes,
    Stage,
    staged,
)
from promo.store.items import Item, code_from_item, key_of, n, s, window_attributes
from promo.store.table import (
    BATCH_WRITE_LIMIT,
    TRANSACTION_LIMIT,
    ConditionFailed,
    Table,
    TransactionCancelled,
    chunked,
)

if TYPE_CHECKING:  # only bulk adds need threads, and cold starts should not import them
    from concurrent.futures import Future

# Two items per code (code + id pointer), so this many codes fit one atomic transaction.
_CODES_PER_TRANSACTION = TRANSACTION_LIMIT // 2
_FAILED = "Adding codes failed; nothing was written."


class _Conflicts(NamedTuple):
    taken: list[str]
    in_flight: list[str]
    cleared: bool


class BulkAdds:
    def __init__(
        self, table: Table, settings: Settings, outcomes: BatchOutcomes, code_keys: CodeKeys
    ) -> None:
        self._table = table
        self._settings = settings
        self._outcomes = outcomes
        self._keys = code_keys

    def add(
        self, tenant_id: str, pools: Mapping[str, Pool], new_codes: Sequence[NewCode], actor: str
    ) -> list[Code]:
        """Add codes atomically: all of them, or none and every conflicting value named."""
        self._keys.check_adds_allowed(tenant_id)
        keyed = [self._keys.keyed_value(tenant_id, code.value) for code in new_codes]
        times = Counter(keyed)
        repeated = [code.value for code, k in zip(new_codes, keyed, strict=True) if times[k] > 1]
        if repeated:
            raise DuplicateValues(repeated)
        if not new_codes:
            return []
        now = clock.now()
        first_number = self.allocate_numbers(tenant_id, len(new_codes))
        stamped = clock.to_stored(now)

        def items(start: int, stop: int) -> list[tuple[Item, Item]]:
            """The code items and id pointers of ``new_codes[start:stop]``."""
            return [
                new_code_item(
                    keys.code_key(tenant_id, keyed[offset]),
                    pools[new_codes[offset].pool_id],
                    new_codes[offset],
                    first_number + offset,
                    stamped,
                    actor,
                )
                for offset in range(start, stop)
            ]

        if len(new_codes) > _CODES_PER_TRANSACTION:
            # Every pool is resolved before anything is written.
            added_pools = Counter(pools[code.pool_id].pool_id for code in new_codes)
            stage = Stage(
                uuid.uuid4().hex,
                int(now.timestamp()) + self._settings.staged_write_expiry_seconds,
                first_number,
                len(new_codes),
                tuple(added_pools),
            )
            return self._add_staged(tenant_id, items, stage, added_pools, now, actor)
        codes_items = items(0, len(new_codes))
        try:
            self.write_codes(codes_items, stage=None)
        except (DuplicateValues, ConcurrentChange):  # refused: the transaction wrote nothing
            self._give_back_numbers(tenant_id, first_number, len(codes_items))
            raise
        return [code_from_item(code_item) for code_item, _ in codes_items]

    def allocate_numbers(self, tenant_id: str, count: int) -> int:
        """Reserve ``count`` consecutive integer ids with one atomic counter update."""
        attributes = self._table.update(
            Key=keys.counter_key(tenant_id),
            UpdateExpression="ADD next_number :count",
            ExpressionAttributeValues={":count": n(count)},
            ReturnValues="UPDATED_NEW",
        )
        return int(attributes["next_number"]["N"]) - count + 1

    def _give_back_numbers(self, tenant_id: str, first: int, count: int) -> None:
        """Return the ids of an add refused before any item of it was written, unless another
        add took ids since: none of them was ever stored or answered, so every id still names
        one code at most, forever. If it fails, the ids are a gap, as before."""
        with contextlib.suppress(ConditionFailed, StoreUnavailable):
            self._table.update(
                Key=keys.counter_key(tenant_id),
                UpdateExpression="SET next_number = :before",
                ConditionExpression="next_number = :last",
                ExpressionAttributeValues={":before": n(first - 1), ":last": n(first + count - 1)},
            )

    def created_count(self, tenant_id: str) -> int:
        """How many codes the tenant ever created: an upper bound on the values it holds."""
        item = self._table.get(keys.counter_key(tenant_id))
        return int(item["next_number"]["N"]) if item else 0

    def write_codes(
        self,
        codes_items: Sequence[tuple[Item, Item]],
        stage: Stage | None,
        with_pointers: bool = True,
    ) -> None:
        """One transaction; raises DuplicateValues naming every value already present."""
        actions: list[Item] = []
        for code_item, pointer in codes_items:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table.name,
                        "Item": code_item if stage is None else staged(code_item, stage),
                        "ConditionExpression": NEW_ITEM,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
            if with_pointers:
                actions.append(
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": pointer,
                            "ConditionExpression": NEW_ITEM,
                        }
                    }
                )
        for _ in range(2):
            try:
                self._table.transact(actions)
                return
            except TransactionCancelled as cancelled:
                conflicts = self._conflicts(cancelled, actions)
                if conflicts.taken:
                    raise DuplicateValues(conflicts.taken) from cancelled
                if conflicts.in_flight:
                    raise ConcurrentChange(conflicts.in_flight) from cancelled
                if not conflicts.cleared:
                    raise StoreUnavailable(_FAILED) from None
        raise StoreUnavailable(_FAILED)

    def _conflicts(self, cancelled: TransactionCancelled, actions: Sequence[Item]) -> "_Conflicts":
        """Why each conflicting value is held: by a code (taken), by another add that has not
        finished (in flight), or by an abandoned stage, which is cleared here."""
        conflicts = _Conflicts([], [], cleared=False)
        for action, reason in zip(actions, cancelled.reasons, strict=False):
            if reason.get("Code") != "ConditionalCheckFailed":
                continue
            value = action["Put"]["Item"]["value"]["S"]
            existing = reason.get("Item")
            if existing is None or "staged_batch" not in existing:
                conflicts.taken.append(value)
                continue
            outcome = self._outcomes.of_item(existing["tenant"]["S"], existing)
            if outcome == ABORTED:
                self._outcomes.clear_staged(existing["tenant"]["S"], existing)
                conflicts = conflicts._replace(cleared=True)
            elif outcome is None:
                conflicts.in_flight.append(value)
            else:
                conflicts.taken.append(value)
        return conflicts

    def _add_staged(
        self,
        tenant_id: str,
        items: Callable[[int, int], list[tuple[Item, Item]]],
        stage: Stage,
        pools: Counter[str],
        now: datetime,
        actor: str,
    ) -> list[Code]:
        # Imported here: only bulk adds need threads, and cold starts should not pay for them.
        from concurrent.futures import ThreadPoolExecutor

        # Staged codes fill whole transactions; their id pointers need no condition (numbers
        # come from the counter) and go in cheaper batch writes, each once its code has landed:
        # a pointer never exists without a staged code that leads whoever clears the batch to
        # it. They are queued after every stage, so no worker waiting on a stage holds one up.
        # Each chunk's items are built just before its stage is queued, and the answer while
        # the writes are under way: this Python work overlaps DynamoDB's instead of preceding
        # and following it.
        chunks: list[list[tuple[Item, Item]]] = []
        with ThreadPoolExecutor(max_workers=self._settings.bulk_write_concurrency) as pool:
            staging: list[Future[DuplicateValues | StoreUnavailable | None]] = []
            for start in range(0, stage.size, TRANSACTION_LIMIT):
                chunks.append(items(start, min(stage.size, start + TRANSACTION_LIMIT)))
                staging.append(pool.submit(self._stage_chunk, chunks[-1], stage))
            pointing = [
                pool.submit(self._put_pointers, staged_chunk, [p for _, p in part])
                for staged_chunk, chunk in zip(staging, chunks, strict=True)
                for part in chunked(chunk, BATCH_WRITE_LIMIT)
            ]
            added = [code_from_item(code_item) for chunk in chunks for code_item, _ in chunk]
            outcomes = [future.result() for future in staging]
            outcomes += [future.result() for future in pointing]
        duplicates = [v for o in outcomes if isinstance(o, DuplicateValues) for v in o.values]
        in_flight = [v for o in outcomes if isinstance(o, ConcurrentChange) for v in o.values]
        failed = [outcome for outcome in outcomes if outcome is not None]
        if failed or time.time() >= stage.deadline:
            # A refused transaction wrote nothing; any other may have landed.
            refused = (DuplicateValues, ConcurrentChange)
            landed = [
                chunk
                for chunk, outcome in zip(chunks, outcomes[: len(chunks)], strict=True)
                if not isinstance(outcome, refused)
            ]
            self._unstage(landed, stage.batch_id)
            if not landed:
                self._give_back_numbers(tenant_id, stage.first_number, stage.size)
            if duplicates:
                raise DuplicateValues(duplicates)
            if in_flight:
                raise ConcurrentChange(in_flight)
            raise StoreUnavailable(_FAILED)
        if not self._commit(tenant_id, stage.batch_id, pools, now, actor):
            self._unstage(chunks, stage.batch_id)
            raise StoreUnavailable(_FAILED)
        return added

    def _commit(
        self, tenant_id: str, batch_id: str, pools: Counter[str], now: datetime, actor: str
    ) -> bool:
        """Write the batch's commit record: the point from which it exists. True if it did.
        It says how many codes of each pool the add staged, so the change stream can move them
        from staged to available without reading them (promo.services.inventory).

        When DynamoDB's answer is lost, an abort record under the same key settles the doubt:
        if it lands, the commit never will (both are conditional on the key being free); if it
        does not, the commit had landed.
        """
        record = {
            **keys.batch_key(tenant_id, batch_id),
            "count": n(sum(pools.values())),
            "pools": {"M": {pool: n(count) for pool, count in pools.items()}},
            "created_at": s(clock.to_stored(now)),
            "created_by": s(actor),
        }
        try:
            # Every code is staged by now, so an answer that began after this moment finds
            # them all (readers show a batch only if it committed before they began).
            committed = {"outcome": s(COMMITTED), "committed_at": n(int(time.time() * 1000))}
            self._table.put(Item={**record, **committed}, ConditionExpression=NEW_ITEM)
        except ConditionFailed:
            # Our own retried commit, or a reader's abort of a stage that outlived its expiry.
            return self._outcomes.outcome(tenant_id, batch_id, deadline=None) == COMMITTED
        except StoreUnavailable:
            for _ in range(3):
                try:
                    return self._outcomes.abort(tenant_id, batch_id) == COMMITTED
                except StoreUnavailable:
                    continue
            raise
        return True

    def _stage_chunk(
        self, chunk: Sequence[tuple[Item, Item]], stage: Stage
    ) -> DuplicateValues | StoreUnavailable | None:
        try:
            self.write_codes(chunk, stage, with_pointers=False)
        except (DuplicateValues, StoreUnavailable) as failure:  # ConcurrentChange is one too
            return failure
        return None

    def _put_pointers(
        self,
        staged_chunk: "Future[DuplicateValues | StoreUnavailable | None]",
        pointers: list[Item],
    ) -> StoreUnavailable | None:
        if staged_chunk.result() is not None:
            return None  # its codes did not land (that failure is the stage's to report)
        try:
            self._table.batch_put(pointers)
        except StoreUnavailable as failure:
            return failure
        return None

    def _unstage(self, chunks: Sequence[Sequence[tuple[Item, Item]]], batch_id: str) -> None:
        """Roll back a staged batch: delete whatever of it was written, pointers first (while
        any is left, a staged code of it is too, for whoever clears the batch to meet)."""
        self._table.batch_delete([key_of(pointer) for chunk in chunks for _, pointer in chunk])
        self._outcomes.delete_codes(
            batch_id, [key_of(code_item) for chunk in chunks for code_item, _ in chunk]
        )


def new_code_item(
    key: Item, pool: Pool, new: NewCode, number: int, stamped: str, actor: str
) -> tuple[Item, Item]:
    """The item of a new available code, at ``key`` (its tenant's key for the value), and its
    id pointer."""
    tenant_id = pool.tenant_id
    code_id = code_uuid(number)
    validity = new.validity
    if validity.end is None and pool.default_validity_days is not None:
        start = validity.start or clock.from_stored(stamped)
        validity = Window(validity.start, start + timedelta(days=pool.default_validity_days))
    position = keys.index_position(new.value)
    item: Item = {
        **key,
        "tenant": s(tenant_id),
        "pool": s(pool.pool_id),
        "value": s(new.value),
        "uuid": s(str(code_id)),
        "number": n(number),
        "state": s(CodeState.AVAILABLE),
        "activity": s(ActivityState.ACTIVE),
        "created_at": s(stamped),
        "created_by": s(actor),
        "updated_at": s(stamped),
        "updated_by": s(actor),
        "avail_pk": s(
            keys.available_partition(
                tenant_id, pool.pool_id, keys.shard_of(position, pool.shard_count)
            )
        ),
        "avail_sk": s(position),
        "list_pk": s(keys.listing_partition(tenant_id, pool.pool_id)),
        "list_sk": s(keys.listing_position(stamped, number)),
        **window_attributes(validity),
    }
    if pool.redemptions_per_code > 1:
        item["uses_left"] = n(pool.redemptions_per_code)
    pointer: Item = {
        **keys.number_key(tenant_id, number),
        "value": s(new.value),
        "uuid": s(str(code_id)),
    }
    return item, pointer
