"""Per-pool inventory counts, kept from the change stream: every stream record is counted
exactly once, however often the stream delivers it.

A pool's counts are one item (``INVENTORY#<tenant>#<pool>``) with a number per bucket
(``promo.domain.inventory``). The stream consumer adds what a batch of records changed with
``apply``: in one ``TransactWriteItems`` it adds each pool's deltas and puts one marker item per
record (``INVENTORY#APPLIED#<eventID>``, kept two days by TTL, beyond the stream's 24-hour
retention), each conditional on the marker not existing. A record counted before (a retried
batch, a batch split in two after a failure, two invocations that met the same record) fails
its marker's condition, so the whole transaction is cancelled and nothing is added; the
cancellation names those records, they are dropped and the rest is written again. Counts and
markers are written together or not at all, so there is no moment at which a record is
counted without its marker or marked without being counted.

Why markers and not a sequence number per shard: Lambda's DynamoDB Streams records do not name
their shard, and sequence numbers are ordered only within one, so "the last sequence applied"
cannot be kept per pool. A marker per record needs no ordering at all: batches split by
``BisectBatchOnFunctionError``, resent from a reported failure, or run in parallel are all
counted once. Its price is one more item written per counted record (docs/capacity.md).

The claim path never touches any of this: a claim is still one conditional write of the code,
and the counts follow it through the stream.
"""

import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

from promo.domain import clock
from promo.domain.errors import StoreUnavailable
from promo.domain.inventory import AlertLevel, Bucket, PoolCounts, bucket
from promo.domain.models import ActivityState, CodeState
from promo.store import keys
from promo.store.codes.visibility import COMMITTED, BatchOutcomes
from promo.store.items import Item, n, s
from promo.store.table import TRANSACTION_LIMIT, ConditionFailed, Table, TransactionCancelled

# Markers outlive the stream's 24-hour retention, so no record can come back after its marker.
MARKER_SECONDS = 2 * 86400
_BUCKETS = tuple(Bucket)
_NAMES = {f"#{which.value}": which.value for which in _BUCKETS}

PoolKey = tuple[str, str]  # (tenant, pool)


class Counted(NamedTuple):
    """What one stream record changes: per pool, per bucket, how many codes come or go."""

    record_id: str
    deltas: Mapping[PoolKey, Mapping[str, int]]


class PoolCountStore:
    def __init__(self, table: Table, outcomes: BatchOutcomes) -> None:
        self._table = table
        self._outcomes = outcomes

    # ------------------------------------------------------------------ counting the stream

    def apply(self, records: Sequence[Counted]) -> int:
        """Count each record once: the number of records counted now (others were before).

        Records go in transactions of at most 100 items (their markers and their pools'
        counts); StoreUnavailable if one cannot be written, after which every transaction
        before it stays counted and a retry counts only what is left."""
        changing = [record for record in records if _nonzero(record.deltas)]
        counted = 0
        for chunk in _chunks(changing):
            counted += self._apply_chunk(chunk)
        return counted

    def _apply_chunk(self, chunk: list[Counted]) -> int:
        while chunk:
            actions = self._actions(chunk)
            try:
                self._table.transact(actions)
                return len(chunk)
            except TransactionCancelled as cancelled:
                seen = {
                    index
                    for index, reason in enumerate(cancelled.reasons[: len(chunk)])
                    if reason.get("Code") == "ConditionalCheckFailed"
                }
                if not seen:
                    raise StoreUnavailable("Counting the change stream failed; retry.") from None
                chunk = [record for index, record in enumerate(chunk) if index not in seen]
        return 0

    def _actions(self, chunk: Sequence[Counted]) -> list[Item]:
        expires = n(int(time.time()) + MARKER_SECONDS)
        actions: list[Item] = [
            {
                "Put": {
                    "TableName": self._table.name,
                    "Item": {**keys.applied_record_key(record.record_id), "expires_at": expires},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for record in chunk
        ]
        totals: dict[PoolKey, Counter[str]] = {}
        for record in chunk:
            for pool, deltas in record.deltas.items():
                totals.setdefault(pool, Counter()).update(deltas)
        stamped = s(clock.to_stored(clock.now()))
        for (tenant_id, pool_id), deltas in sorted(totals.items()):
            values: Item = {":one": n(1), ":tenant": s(tenant_id), ":pool": s(pool_id)}
            additions = ["version :one"]
            for which, delta in sorted(deltas.items()):
                if delta:
                    values[f":{which}"] = n(delta)
                    additions.append(f"#{which} :{which}")
            values[":now"] = stamped
            actions.append(
                {
                    "Update": {
                        "TableName": self._table.name,
                        "Key": keys.pool_counts_key(tenant_id, pool_id),
                        "UpdateExpression": (
                            f"ADD {', '.join(additions)}"
                            " SET tenant = :tenant, #pool = :pool, updated_at = :now"
                        ),
                        "ExpressionAttributeNames": {
                            "#pool": "pool",
                            **{f"#{w}": w for w in deltas if deltas[w]},
                        },
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        return actions

    # ------------------------------------------------------------------ reading

    def get(self, tenant_id: str, pool_id: str) -> PoolCounts | None:
        """A pool's counts: one strongly consistent read; None before its first change."""
        item = self._table.get(keys.pool_counts_key(tenant_id, pool_id))
        if item is None:
            return None
        return PoolCounts(
            tenant_id,
            pool_id,
            {which.value: int(item.get(which.value, {"N": "0"})["N"]) for which in _BUCKETS},
            int(item.get("version", {"N": "0"})["N"]),
            AlertLevel(item.get("alert", {"S": AlertLevel.OK})["S"]),
        )

    def set_alert(
        self, tenant_id: str, pool_id: str, previous: AlertLevel, level: AlertLevel
    ) -> bool:
        """Record ``level`` as announced, if ``previous`` still is; True if this call did."""
        condition = "alert = :previous"
        if previous is AlertLevel.OK:
            condition = f"(attribute_not_exists(alert) OR {condition})"
        try:
            self._table.update(
                Key=keys.pool_counts_key(tenant_id, pool_id),
                UpdateExpression="SET alert = :level",
                ConditionExpression=f"attribute_exists(pk) AND {condition}",
                ExpressionAttributeValues={":level": s(level), ":previous": s(previous)},
            )
        except ConditionFailed:
            return False
        return True

    # ------------------------------------------------------------------ recounting

    def recount(self, tenant_id: str, pool_id: str) -> dict[str, int]:
        """Every code of the pool read and put in its bucket: what the counts should say.

        Reads the pool's whole listing (one index query per 100 codes and a batch read of
        them), and each bulk add's outcome once; writes nothing."""
        found: Counter[str] = Counter({which.value: 0 for which in _BUCKETS})
        for item in self._pool_items(tenant_id, pool_id):
            found[self.bucket_of(tenant_id, item)] += 1
        return dict(found)

    def bucket_of(self, tenant_id: str, item: Item) -> Bucket:
        staged = False
        if "staged_batch" in item:
            outcome, _ = self._outcomes.record(tenant_id, item["staged_batch"]["S"], None)
            staged = outcome != COMMITTED
        state = CodeState(item["state"]["S"])
        return bucket(state, ActivityState(item["activity"]["S"]), staged)

    def _pool_items(self, tenant_id: str, pool_id: str) -> Iterator[Item]:
        entries = self._table.paginate(
            self._table.query,
            IndexName=keys.TableLayout().listing_index,
            KeyConditionExpression="list_pk = :partition",
            ExpressionAttributeValues={":partition": s(keys.listing_partition(tenant_id, pool_id))},
        )
        page: list[Item] = []
        for entry in entries:
            page.append({"pk": entry["pk"], "sk": entry["sk"]})
            if len(page) == 100:
                yield from self._table.batch_get(page)
                page = []
        if page:
            yield from self._table.batch_get(page)

    def replace(
        self, tenant_id: str, pool_id: str, counts: Mapping[str, int], version: int | None
    ) -> bool:
        """Set the pool's counts to ``counts`` if they are still at ``version`` (None: the pool
        has no counts yet); True if they were set. A batch counted meanwhile moves the version,
        and the caller recounts."""
        values: Item = {
            ":one": n(1),
            ":tenant": s(tenant_id),
            ":pool": s(pool_id),
            ":now": s(clock.to_stored(clock.now())),
        }
        assignments = [
            "tenant = :tenant",
            "#pool = :pool",
            "updated_at = :now",
            "version = if_not_exists(version, :zero) + :one",
        ]
        values[":zero"] = n(0)
        for which in _BUCKETS:
            values[f":{which.value}"] = n(int(counts.get(which.value, 0)))
            assignments.append(f"#{which.value} = :{which.value}")
        if version is None:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "version = :version"
            values[":version"] = n(version)
        try:
            self._table.update(
                Key=keys.pool_counts_key(tenant_id, pool_id),
                UpdateExpression=f"SET {', '.join(assignments)}",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#pool": "pool", **_NAMES},
                ExpressionAttributeValues=values,
            )
        except ConditionFailed:
            return False
        return True


def _nonzero(deltas: Mapping[PoolKey, Mapping[str, int]]) -> bool:
    return any(delta for pool in deltas.values() for delta in pool.values())


def _chunks(records: Sequence[Counted]) -> Iterator[list[Counted]]:
    """Records in order, grouped so a group's markers and its pools' counts fit one
    transaction."""
    chunk: list[Counted] = []
    pools: set[PoolKey] = set()
    for record in records:
        touched = pools | set(record.deltas)
        if chunk and len(chunk) + 1 + len(touched) > TRANSACTION_LIMIT:
            yield chunk
            chunk, touched = [], set(record.deltas)
        chunk.append(record)
        pools = touched
    if chunk:
        yield chunk
