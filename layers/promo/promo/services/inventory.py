"""The table's change stream, consumed: per-pool inventory and domain events, off the claim path.

``consume(svc, records)`` takes one batch of DynamoDB Streams records (as Lambda delivers them,
or as ``make run`` reads them from DynamoDB Local) and

1. derives from each record what it changes: per pool, which bucket a code leaves and which it
   enters (``promo.domain.inventory``), and the events it tells (``promo.domain.events``);
2. counts the batch, each record exactly once (``promo.store.pool_counts``);
3. publishes the events in record order (``svc.publish``);
4. reads each touched pool's counts once: records ``PoolAvailable``, and announces a pool that
   fell to its low watermark or to empty (``PoolLow`` / ``PoolEmpty``, the ``PoolsLow`` /
   ``PoolsEmpty`` metrics), once per fall: the level announced is recorded on the counts,
   conditionally, before the event goes out.

It answers the sequence number from which the batch must be delivered again (None: all done),
Lambda's ``ReportBatchItemFailures``. Counting again what was counted costs a cancelled
transaction and changes nothing; events are delivered at least once, under ids a retry repeats.

How a change moves a code between buckets: a code created enters its bucket (``staged`` when a
bulk add staged it); a code removed leaves it (only a stage rolled back or abandoned is ever
removed); a code changed leaves its old bucket and enters its new one. A staged code can change
only once its add committed, so a change's old version counts as committed even while it still
carries the marker. A bulk add's commit moves its codes from ``staged`` to ``available``, as
many per pool as its commit record says, and announces them (``CodesAdded``).

``reconcile`` recounts a pool from the table and repairs its counts.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from promo import observability
from promo.domain import clock
from promo.domain.errors import PromoError, StoreUnavailable
from promo.domain.events import DomainEvent, code_events, codes_added, pool_event
from promo.domain.inventory import AlertLevel, Bucket, PoolCounts, alert_level, bucket, crossed
from promo.event_bus import BusEvent, EventsNotPublished
from promo.observability import logger
from promo.services import Services
from promo.store.change_records import BatchCommit, Change, CodeChange, read_record
from promo.store.pool_counts import Counted, PoolCountStore, PoolKey


class Effects(NamedTuple):
    """What one record does: its counts and its events."""

    sequence: str
    counted: Counted
    events: list[BusEvent]


class StreamOutcome(NamedTuple):
    # The first record to deliver again (its SequenceNumber); None when the batch is done.
    retry_from: str | None
    counted: int = 0
    published: int = 0


def consume(svc: Services, records: Sequence[Mapping[str, Any]]) -> StreamOutcome:
    """Count and announce one batch of stream records; see the module's description."""
    if not records:
        return StreamOutcome(None)
    first = str(records[0].get("dynamodb", {}).get("SequenceNumber", ""))
    counts = counts_of(svc)
    try:
        effects = [
            effects_of(svc, change)
            for record in records
            if (change := read_record(record)) is not None
        ]
        counted = counts.apply([effect.counted for effect in effects])
    except StoreUnavailable as failed:
        logger.warning(
            "Stream batch not counted; it is delivered again", extra={"reason": failed.message}
        )
        return StreamOutcome(first)
    events = [event for effect in effects for event in effect.events]
    try:
        svc.publish(events)
    except EventsNotPublished as failed:
        # Events are in record order: deliver again from the record of the first one not sent.
        at = _record_of(effects, failed.first)
        logger.warning("Events not published; delivered again", extra={"reason": failed.message})
        return StreamOutcome(effects[at].sequence, counted, failed.first)
    try:
        _announce_levels(svc, counts, effects)
    except PromoError as failed:
        logger.warning("Pool levels not announced; retried", extra={"reason": failed.message})
        return StreamOutcome(effects[-1].sequence, counted, len(events))
    return StreamOutcome(None, counted, len(events))


def counts_of(svc: Services) -> PoolCountStore:
    return PoolCountStore(svc.codes.table, svc.codes.outcomes)


def effects_of(svc: Services, change: Change) -> Effects:
    if isinstance(change, CodeChange):
        deltas = code_deltas(change)
        events = code_events(change.old, change.new)
        return Effects(
            change.sequence,
            Counted(change.record_id, deltas),
            _published(change.record_id, events),
        )
    return _commit_effects(svc, change)


def code_deltas(change: CodeChange) -> dict[PoolKey, dict[str, int]]:
    """The buckets a code leaves and enters with this change (nothing when it stays)."""
    moves: Counter[tuple[str, str, str]] = Counter()
    old, new = change.old, change.new
    if old is not None:
        # A staged code changes only once its add committed: then its old version is a code.
        staged = old.staged and (new is None or new.staged)
        moves[(old.tenant_id, old.pool_id, bucket(old.state, old.activity, staged))] -= 1
    if new is not None:
        moves[(new.tenant_id, new.pool_id, bucket(new.state, new.activity, new.staged))] += 1
    deltas: dict[PoolKey, dict[str, int]] = {}
    for (tenant_id, pool_id, which), delta in moves.items():
        if delta:
            deltas.setdefault((tenant_id, pool_id), {})[which] = delta
    return deltas


def _commit_effects(svc: Services, commit: BatchCommit) -> Effects:
    deltas: dict[PoolKey, dict[str, int]] = {}
    events: list[BusEvent] = []
    at = clock.from_stored(commit.created_at)
    for pool_id, count in sorted(commit.pools.items()):
        deltas[(commit.tenant_id, pool_id)] = {Bucket.STAGED: -count, Bucket.AVAILABLE: count}
        codes = svc.codes.added_in_batch(
            commit.tenant_id, pool_id, commit.created_at, commit.batch_id
        )
        if len(codes) < count:  # the listing index has not caught up yet: come back later
            raise StoreUnavailable(f"Bulk add {commit.batch_id}: {len(codes)} of {count} listed.")
        announced = codes_added(
            commit.tenant_id, pool_id, codes, commit.created_by, at, commit.batch_id
        )
        events += [
            BusEvent(
                f"{commit.record_id}:{pool_id}:{index}",
                event.kind,
                event.at,
                {
                    "id": f"{commit.record_id}:{pool_id}:{index}",
                    **event.detail,
                },
            )
            for index, event in enumerate(announced)
        ]
    return Effects(commit.sequence, Counted(commit.record_id, deltas), events)


def _published(record_id: str, events: Sequence[DomainEvent]) -> list[BusEvent]:
    """Events with ids a retry of the same record repeats."""
    return [
        BusEvent(
            f"{record_id}:{event.kind}",
            event.kind,
            event.at,
            {
                "id": f"{record_id}:{event.kind}",
                **event.detail,
            },
        )
        for event in events
    ]


def _record_of(effects: Sequence[Effects], event_index: int) -> int:
    seen = 0
    for index, effect in enumerate(effects):
        seen += len(effect.events)
        if event_index < seen:
            return index
    return len(effects) - 1


def _announce_levels(svc: Services, counts: PoolCountStore, effects: Sequence[Effects]) -> None:
    """Record each touched pool's available codes, and announce the thresholds it fell through.
    Only codes leaving ``available`` make a fall: a pool whose first codes are still staged, or
    whose count is behind, is not announced empty by a batch that took nothing from it."""
    taken: Counter[PoolKey] = Counter()  # codes that left available, per pool
    for effect in effects:
        for pool_key, deltas in effect.counted.deltas.items():
            taken[pool_key] += max(0, -deltas.get(Bucket.AVAILABLE, 0))
    for tenant_id, pool_id in sorted(taken):
        current = counts.get(tenant_id, pool_id)
        if current is None:
            continue
        available = current.of(Bucket.AVAILABLE)
        observability.pool_available(tenant_id, pool_id, available)
        pool = svc.catalog.get_pool(tenant_id, pool_id)
        watermark = pool.low_watermark if pool is not None else None
        level = alert_level(available, watermark)
        fell = crossed(current.alert, level, watermark)
        if level is current.alert or (fell and taken[(tenant_id, pool_id)] <= 0):
            continue
        if not counts.set_alert(tenant_id, pool_id, current.alert, level):
            continue  # another invocation moved it first, and announces it
        try:
            svc.publish([_pool_bus_event(current, level, available, watermark) for level in fell])
        except EventsNotPublished:
            counts.set_alert(tenant_id, pool_id, level, current.alert)  # announce it next time
            raise
        for reached in fell:
            observability.count("PoolsLow" if reached is AlertLevel.LOW else "PoolsEmpty")


def _pool_bus_event(
    counts: PoolCounts, level: AlertLevel, available: int, watermark: int | None
) -> BusEvent:
    event = pool_event(level, counts.tenant_id, counts.pool_id, available, watermark, clock.now())
    event_id = f"{counts.tenant_id}:{counts.pool_id}:{event.kind}:{counts.version}"
    return BusEvent(event_id, event.kind, event.at, {"id": event_id, **event.detail})


# ---------------------------------------------------------------------- repair


class Repair(NamedTuple):
    """A pool's counts before and after ``reconcile`` (equal when nothing drifted)."""

    tenant_id: str
    pool_id: str
    before: Mapping[str, int]
    after: Mapping[str, int]

    @property
    def changed(self) -> dict[str, tuple[int, int]]:
        return {
            which.value: (self.before.get(which.value, 0), self.after.get(which.value, 0))
            for which in Bucket
            if self.before.get(which.value, 0) != self.after.get(which.value, 0)
        }


class PoolBusy(StoreUnavailable):
    """The pool's counts moved during every recount: its stream is not quiet."""


def reconcile(svc: Services, tenant_id: str, pool_id: str, attempts: int = 3) -> Repair:
    """Recount the pool from the table and set its counts to what was found, if they drifted.

    The repair is conditional on the counts not having moved since they were read: a batch
    counted during the recount would otherwise be counted twice. Exact when the stream consumer
    has caught up (its iterator age near zero) and the pool is quiet; PoolBusy after
    ``attempts`` recounts that each saw the counts move."""
    counts = counts_of(svc)
    for _ in range(attempts):
        current = counts.get(tenant_id, pool_id)
        found = counts.recount(tenant_id, pool_id)
        before = dict(current.counts) if current is not None else dict.fromkeys(found, 0)
        if before == found:
            return Repair(tenant_id, pool_id, before, found)
        version = current.version if current is not None else None
        if counts.replace(tenant_id, pool_id, found, version):
            return Repair(tenant_id, pool_id, before, found)
    raise PoolBusy(f"The counts of {tenant_id}/{pool_id} kept moving; retry when it is quiet.")
