"""The exactly-once claim: issue any available code of a pool with one conditional write.

Candidates come from a page of the sharded ``available`` index cached in the function and
shared by its claims. The write's condition (state AVAILABLE, active, not staged or staged by
a committed batch) is the only arbiter of who gets a code, so a code is issued at most once
whatever the concurrency. The one fact judged from a read is a candidate's validity window,
which no write changes after the code is created: the index entry carries it.
"""

import random
import threading
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from promo import observability
from promo.domain import clock
from promo.domain.errors import NoCodeAvailable, StoreUnavailable
from promo.domain.lifecycle import RULES, Transition
from promo.domain.models import ActivityState, Code, CodeState, Issuance, Pool
from promo.settings import Settings
from promo.store import keys
from promo.store.codes.transitions import Transitions, Write, issue_attributes
from promo.store.codes.visibility import COMMITTED, STAGE_ATTRIBUTES, BatchOutcomes
from promo.store.items import Item, code_from_item, key_of, s
from promo.store.table import ConditionFailed, Table

# Claims this far in the past read the index at their own time instead of using the cache.
_BACKDATED = timedelta(minutes=1)
# What the available index projects of a code besides its keys: every attribute an available
# code has that never changes, so a claim can return the issued code without reading it back.
_CANDIDATE_PROJECTION = (
    "pk, sk, #value, #uuid, #number, created_at, created_by, valid_from, valid_until,"
    f" {STAGE_ATTRIBUTES}"
)
# After a claim's second lost write, it waits up to _BACKOFF * 2**losses (at most _BACKOFF_CAP).
_BACKOFF = 0.001
_BACKOFF_CAP = 0.05
# A pool where this instance lost a write this recently is crowded: small shards are not held.
_CROWD_SECONDS = 1.0
# A shard this instance read empty this recently is tried after the others, not skipped: a bulk
# add may refill it, and "none available" still reads every shard.
_EMPTY_SECONDS = 10.0
_CANDIDATE_NAMES = {"#value": "value", "#uuid": "uuid", "#number": "number"}


class Claims:
    def __init__(
        self,
        table: Table,
        settings: Settings,
        outcomes: BatchOutcomes,
        transitions: Transitions,
    ) -> None:
        self._table = table
        self._settings = settings
        self._outcomes = outcomes
        self._transitions = transitions
        self._index = keys.TableLayout().available_index
        self._candidates: dict[tuple[str, str], _CandidatePage] = {}
        self._candidates_lock = threading.Lock()
        # Per pool, the shards last seen holding less than a page: read whole, in one query.
        self._sparse: dict[tuple[str, str], set[int]] = {}
        self._lost_at: dict[str, float] = {}  # per pool, when this instance last lost a write
        # Per pool, when this instance last read each of its shards empty.
        self._empty_at: dict[tuple[str, str], dict[int, float]] = {}

    def claim(self, pool: Pool, issuance: Issuance) -> Code:
        """Issue any available code of ``pool``: one conditional write in the steady state.

        A backdated claim reads its own page, filtered at its effective time.
        """
        at = issuance.at
        ceiling = self._settings.claim_max_attempts
        backdated = clock.now() - at > _BACKDATED
        stored_at = clock.to_stored(at)
        own_page: deque[Item] = deque()
        limit = self._transitions.limit_action(pool, issuance)
        emptied: set[int] = set()  # shards this claim read to their end and found empty
        lost = 0
        for _ in range(ceiling * 4):
            if backdated:
                own_page = own_page or deque(self._read_candidates(pool, at, emptied, True))
                key = own_page.popleft() if own_page else None
            else:
                key = self._next_candidate(pool, at, emptied)
            if key is None:
                observability.count(observability.NO_CODE_AVAILABLE)
                raise NoCodeAvailable
            if not _valid_at(key, stored_at):
                continue  # its window closed after its page was read: no write can issue it
            if backdated and key["created_at"]["S"] > stored_at:
                continue  # a backdated claim never issues a code that did not exist yet
            write = Write(
                key_of(key),
                RULES[Transition.ISSUE],
                issuance,
                issue_attributes(issuance),
                key["staged_batch"]["S"] if "staged_batch" in key else None,
                known=_available_code(pool, key),
                limit=limit,
            )
            try:
                item = self._transitions.apply(write)
            except ConditionFailed:
                # Another instance took it: it reads the same stretch of the index, so the
                # neighbours of this key in the page are likely taken or about to be. Drop the
                # page and read afresh at a new random point, instead of losing to it again.
                observability.count(observability.CONFLICTING_CLAIMS)
                self._lost_at[pool.pool_id] = time.monotonic()
                own_page.clear()
                self._forget_candidates(pool)
                lost += 1
                if lost > 1:  # a crowd on few codes: let the winners through, jittered
                    time.sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF * 2**lost)))  # noqa: S311
                continue
            observability.count(observability.ISSUED_CODES)
            return code_from_item(item)
        raise StoreUnavailable("Too many concurrent claims on this pool; retry.")

    def _next_candidate(self, pool: Pool, at: datetime, emptied: set[int]) -> Item | None:
        """The next key to try; never one this store already handed out, so concurrent
        claims in one process (a threaded local stack, a benchmark) do not fight over it."""
        cache_key = (pool.tenant_id, pool.pool_id)
        with self._candidates_lock:
            candidates = self._candidates.setdefault(cache_key, _CandidatePage())
            key = candidates.take()
        if key is not None:
            return key
        page = self._read_candidates(pool, at, emptied)
        if not page:
            return None  # every shard read empty: the pool has no code to give
        with self._candidates_lock:
            candidates.offer(page)
            key = candidates.take()
        # A page of keys all handed out before (claims that failed for a transient reason, or
        # pages read at the same moment): the filter saves writes, it must not say "none".
        return key if key is not None else page[0]

    def _forget_candidates(self, pool: Pool) -> None:
        with self._candidates_lock:
            candidates = self._candidates.get((pool.tenant_id, pool.pool_id))
            if candidates is not None:
                candidates.drop_untried()

    def _read_candidates(
        self, pool: Pool, at: datetime, emptied: set[int], existed: bool = False
    ) -> list[Item]:
        """A page of available keys from one shard: a random shard, read from a random point
        in index order and taken from its far end back, or, once it is known to hold less than
        a page, read whole.

        The index key is a hash, so instances that start at random points rarely read the same
        keys, and one that takes its page in order meets another's only where their stretches
        meet (``python -m bench.conflicts`` simulates it; docs/capacity.md). If that shard is
        empty, each other shard is read once from its start (one query each: shards are nearly
        empty by then), so the pool is known empty after at most ``shard_count + 1`` queries.
        Shards in ``emptied`` were read to their end by the same claim and are skipped; those
        this instance read empty lately are read after the others, never skipped. Codes
        of bulk adds not committed (yet) are read past, not counted, so they never make a pool
        look empty. ``existed``: only codes created by ``at`` (a backdated claim).
        """
        undecided: set[str] = set()
        empty_at = self._empty_at.setdefault((pool.tenant_id, pool.pool_id), {})
        now = time.monotonic()
        lately = {n for n, when in empty_at.items() if now - when < _EMPTY_SECONDS}
        shards = [n for n in range(pool.shard_count) if n not in emptied]
        # A random shard among those not read empty lately, then the rest of them, then those.
        preferred = [n for n in shards if n not in lately] or shards
        first = random.randrange(len(preferred)) if preferred else 0  # noqa: S311 - spreading load
        order = preferred[first:] + preferred[:first]
        order += [n for n in shards if n not in order]
        for step, shard in enumerate(order):
            page = self._read_shard(pool, shard, at, (existed, undecided), whole=step > 0)
            if page:
                empty_at.pop(shard, None)
                return page
            emptied.add(shard)
            empty_at[shard] = time.monotonic()
        return []

    def _read_shard(
        self, pool: Pool, shard: int, at: datetime, filters: tuple[bool, set[str]], whole: bool
    ) -> list[Item]:
        limit = self._settings.claim_page_size
        partition = keys.available_partition(pool.tenant_id, pool.pool_id, shard)
        side = (pool.tenant_id, partition, at, *filters)
        sparse = self._sparse.setdefault((pool.tenant_id, pool.pool_id), set())
        if whole or shard in sparse:
            page = self._query_available(*side, None, "", limit)
            random.shuffle(page)  # every reader from a shard's start reads the same keys
        else:
            start = f"{random.getrandbits(64):016x}"
            page = self._query_available(*side, ">=", start, limit)
            if len(page) < limit:
                page += self._query_available(*side, "<", start, limit - len(page))
        if len(page) >= limit:
            sparse.discard(shard)
            # Taken from its far end back towards where it starts: an instance whose read
            # starts just below it and runs into its keys takes its own far end first, by
            # when those keys are mostly gone; taken forward, the two would meet at once.
            page.reverse()
            return page
        # Less than a page: the shard is read whole next time, in one query. If other
        # instances claim here too (a write lost lately), they all read the same few keys:
        # take one at random and hold none, as held keys there are the ones others take next.
        sparse.add(shard)
        crowded = time.monotonic() - self._lost_at.get(pool.pool_id, float("-inf"))
        return page[:1] if crowded < _CROWD_SECONDS else page

    def _claimable(self, tenant_id: str, item: Item, undecided: set[str]) -> bool:
        """Whether a candidate was never staged or its batch committed. Stages of aborted
        batches met here are cleared, so they stop coming back; ``undecided`` remembers the
        batches still open, so their outcome is read once per index read."""
        batch = item.get("staged_batch", {}).get("S")
        if batch is None:
            return True
        if batch in undecided:
            return False
        outcome = self._outcomes.settle(tenant_id, item)
        if outcome is None:
            undecided.add(batch)
        return outcome == COMMITTED

    def _query_available(
        self,
        tenant_id: str,
        partition: str,
        at: datetime,
        existed: bool,
        undecided: set[str],
        operator: str | None,
        start: str,
        limit: int,
    ) -> list[Item]:
        """Up to ``limit`` claimable codes valid at ``at`` on one side of ``start`` (with no
        ``operator``, from the start of the shard)."""
        valid = (
            "(attribute_not_exists(valid_from) OR valid_from <= :at)"
            " AND (attribute_not_exists(valid_until) OR valid_until >= :at)"
        )
        values = {":partition": s(partition), ":at": s(clock.to_stored(at))}
        condition = "avail_pk = :partition"
        if operator is not None:
            condition += f" AND avail_sk {operator} :start"
            values[":start"] = s(start)
        request: dict[str, Any] = {
            "IndexName": self._index,
            "KeyConditionExpression": condition,
            "FilterExpression": valid + (" AND created_at <= :at" if existed else ""),
            "ExpressionAttributeValues": values,
            "ProjectionExpression": _CANDIDATE_PROJECTION,
            "ExpressionAttributeNames": _CANDIDATE_NAMES,
            "Limit": limit,
        }
        found: list[Item] = []
        for item in self._table.paginate(self._table.query, **request):
            if self._claimable(tenant_id, item, undecided):
                found.append(item)
                if len(found) == limit:
                    break
        return found


class _CandidatePage:
    """Keys read from the available index, waiting to be tried, and those already handed out
    (claimed, lost to another writer, or being tried): a key is handed out once at most."""

    _REMEMBERED = 10_000

    def __init__(self) -> None:
        self.queue: deque[Item] = deque()
        self._remembered: deque[str] = deque()
        self._seen: set[str] = set()

    def offer(self, page: list[Item]) -> None:
        for key in page:
            pk = key["pk"]["S"]
            if pk not in self._seen:
                self._seen.add(pk)
                self._remembered.append(pk)
                self.queue.append(key)
        while len(self._remembered) > self._REMEMBERED:
            self._seen.discard(self._remembered.popleft())

    def take(self) -> Item | None:
        return self.queue.popleft() if self.queue else None

    def drop_untried(self) -> None:
        """Forget the queued keys entirely: a later page may offer them again."""
        for key in self.queue:
            self._seen.discard(key["pk"]["S"])
        self.queue.clear()


def _available_code(pool: Pool, candidate: Item) -> Item:
    """The whole item of an available, active code of ``pool`` from its index entry: no
    transition leads back to AVAILABLE, so it carries no lifecycle attributes yet."""
    item = {k: v for k, v in candidate.items() if k not in ("staged_batch", "staged_until")}
    item.update(
        tenant=s(pool.tenant_id),
        pool=s(pool.pool_id),
        state=s(CodeState.AVAILABLE),
        activity=s(ActivityState.ACTIVE),
    )
    return item


def _valid_at(candidate: Item, at: str) -> bool:
    """Whether a candidate's projected validity window holds stored time ``at``: the test the
    index query and a transition's condition make, stored times comparing as strings."""
    start, end = candidate.get("valid_from"), candidate.get("valid_until")
    return (start is None or start["S"] <= at) and (end is None or end["S"] >= at)
