"""The exactly-once claim: issue any available code of a pool with one conditional write.

Candidates come from a page of the sharded ``available`` index cached in the function and
shared by its claims. The write's condition (state AVAILABLE, active, not staged or staged by
a committed batch) is the only arbiter of who gets a code, so a code is issued at most once
whatever the concurrency. The one fact judged from a read is a candidate's validity window,
which no write changes after the code is created: the index entry carries it.
"""

import random
import threading
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
from promo.store.codes.visibility import ABORTED, COMMITTED, STAGE_ATTRIBUTES, BatchOutcomes
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
        for tried in range(ceiling * 4):
            if tried and tried % ceiling == 0:
                self._forget_candidates(pool)  # the cached page is stale: read the index afresh
            if backdated:
                own_page = own_page or deque(self._read_candidates(pool, at, existed=True))
                key = own_page.popleft() if own_page else None
            else:
                key = self._next_candidate(pool, at)
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
                observability.count(observability.CONFLICTING_CLAIMS)
                continue
            observability.count(observability.ISSUED_CODES)
            return code_from_item(item)
        raise StoreUnavailable("Too many concurrent claims on this pool; retry.")

    def _next_candidate(self, pool: Pool, at: datetime) -> Item | None:
        """The next key to try; never one this store already handed out, so concurrent
        claims in one process (a threaded local stack, a benchmark) do not fight over it."""
        cache_key = (pool.tenant_id, pool.pool_id)
        with self._candidates_lock:
            candidates = self._candidates.setdefault(cache_key, _CandidatePage())
            key = candidates.take()
        if key is not None:
            return key
        page = self._read_candidates(pool, at)
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

    def _read_candidates(self, pool: Pool, at: datetime, existed: bool = False) -> list[Item]:
        """A page of available keys from one shard, starting at a random shard and position.

        Random starts keep concurrent functions (each with its own page) off the same codes;
        an empty answer after every shard was read to its end means the pool is empty. Codes
        of bulk adds not committed (yet) are read past, not counted, so they never make a pool
        look empty. ``existed``: only codes created by ``at`` (a backdated claim).
        """
        limit = self._settings.claim_page_size
        undecided: set[str] = set()
        first = random.randrange(pool.shard_count)  # noqa: S311 - spreading load, not a secret
        for step in range(pool.shard_count):
            shard = (first + step) % pool.shard_count
            partition = keys.available_partition(pool.tenant_id, pool.pool_id, shard)
            start = f"{random.getrandbits(64):016x}"
            side = (pool.tenant_id, partition, at, existed, undecided)
            page = self._query_available(*side, ">=", start, limit)
            if len(page) < limit:
                page += self._query_available(*side, "<", start, limit - len(page))
            if page:
                random.shuffle(page)
                return page
        return []

    def _claimable(self, tenant_id: str, item: Item, undecided: set[str]) -> bool:
        """Whether a candidate was never staged or its batch committed. Stages of aborted
        batches met here are cleared, so they stop coming back; ``undecided`` remembers the
        batches still open, so their outcome is read once per index read."""
        batch = item.get("staged_batch", {}).get("S")
        if batch is None:
            return True
        if batch in undecided:
            return False
        outcome = self._outcomes.of_item(tenant_id, item)
        if outcome == ABORTED:
            self._outcomes.clear_staged(tenant_id, item)
        elif outcome is None:
            undecided.add(batch)
        return outcome == COMMITTED

    def _query_available(
        self,
        tenant_id: str,
        partition: str,
        at: datetime,
        existed: bool,
        undecided: set[str],
        operator: str,
        start: str,
        limit: int,
    ) -> list[Item]:
        """Up to ``limit`` claimable codes valid at ``at`` on one side of ``start``."""
        valid = (
            "(attribute_not_exists(valid_from) OR valid_from <= :at)"
            " AND (attribute_not_exists(valid_until) OR valid_until >= :at)"
        )
        request: dict[str, Any] = {
            "IndexName": self._index,
            "KeyConditionExpression": f"avail_pk = :partition AND avail_sk {operator} :start",
            "FilterExpression": valid + (" AND created_at <= :at" if existed else ""),
            "ExpressionAttributeValues": {
                ":partition": s(partition),
                ":start": s(start),
                ":at": s(clock.to_stored(at)),
            },
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
