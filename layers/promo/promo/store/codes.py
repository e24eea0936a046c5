"""Promo codes in DynamoDB: add, claim, lifecycle transitions, lookups, soft delete, listing.

Every state change is a single conditional write whose condition is the state it leaves (the
rules of ``promo.domain.lifecycle``); nothing here reads a code's state and then writes it on the
strength of that read. The one thing judged from a read is a claim candidate's validity window,
which no write changes after the code is created (``_new_code_item`` writes it, nothing else
does): the index entry carries it, and the claim tests it before the write.
"""

import contextlib
import heapq
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from promo import observability
from promo.domain import clock
from promo.domain.errors import (
    AlreadyDone,
    CodeNotFound,
    CodesNotFound,
    DuplicateValues,
    NoCodeAvailable,
    NotAvailableForIssue,
    OutsideIssueWindow,
    StoreUnavailable,
    TransitionRefused,
)
from promo.domain.ids import code_uuid, number_of
from promo.domain.lifecycle import RULES, Rule, Transition
from promo.domain.models import (
    ActivityState,
    Code,
    CodeState,
    NewCode,
    PointOfContact,
    Pool,
    Receipt,
    Recipient,
    Window,
)
from promo.settings import Settings
from promo.store import keys
from promo.store.items import (
    Item,
    code_from_item,
    contact_attributes,
    n,
    s,
    window_attributes,
)
from promo.store.table import (
    BATCH_WRITE_LIMIT,
    TRANSACTION_LIMIT,
    ConditionFailed,
    Table,
    TransactionCancelled,
)

# Two items per code (code + id pointer), so this many codes fit one atomic transaction.
_CODES_PER_TRANSACTION = TRANSACTION_LIMIT // 2
# Receipts of idempotent requests are kept this long (then DynamoDB's TTL removes them).
_RECEIPT_SECONDS = 7 * 24 * 3600
# Claims this far in the past read the index at their own time instead of using the cache.
_BACKDATED = timedelta(minutes=1)
_NOT_STAGED = "attribute_not_exists(staged_batch)"
_STAGE_ATTRIBUTES = "staged_batch, staged_until"
_COMMITTED, _ABORTED = "COMMITTED", "ABORTED"
# Final batch outcomes remembered per function instance; each is read once, then never changes.
_REMEMBERED_OUTCOMES = 10_000
_NEW_ITEM = "attribute_not_exists(pk)"
_AVAILABLE_ATTRIBUTES = "avail_pk, avail_sk"
# What the available index projects of a code besides its keys: every attribute an available
# code has that never changes, so a claim can return the issued code without reading it back.
_CANDIDATE_PROJECTION = (
    "pk, sk, #value, #uuid, #number, created_at, created_by, valid_from, valid_until,"
    f" {_STAGE_ATTRIBUTES}"
)
_CANDIDATE_NAMES = {"#value": "value", "#uuid": "uuid", "#number": "number"}


class CodeStore:
    def __init__(self, table: Table, settings: Settings) -> None:
        self._table = table
        self._settings = settings
        self._layout = keys.TableLayout()
        self._candidates: dict[tuple[str, str], _CandidatePage] = {}
        self._candidates_lock = threading.Lock()
        self._outcomes: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ adding codes

    def add(
        self, tenant_id: str, pools: Mapping[str, Pool], new_codes: Sequence[NewCode], actor: str
    ) -> list[Code]:
        """Add codes atomically: all of them, or none and every conflicting value named.

        Up to 50 codes go in one DynamoDB transaction. Larger batches are staged, then made
        visible all at once by one commit record (see docs/architecture.md, "Bulk add").
        """
        repeated = [v for v, times in Counter(c.value for c in new_codes).items() if times > 1]
        if repeated:
            raise DuplicateValues(repeated)
        if not new_codes:
            return []
        now = clock.now()
        first_number = self._allocate_numbers(tenant_id, len(new_codes))
        stamped = clock.to_stored(now)
        codes_items = [
            self._new_code_item(
                tenant_id, pools[code.pool_id], code, first_number + offset, stamped, actor
            )
            for offset, code in enumerate(new_codes)
        ]
        if len(codes_items) <= _CODES_PER_TRANSACTION:
            self._write_codes(codes_items, stage=None)
        else:
            self._add_staged(tenant_id, codes_items, now, actor)
        return [code_from_item(code_item) for code_item, _ in codes_items]

    def create_issued(
        self,
        pool: Pool,
        new: NewCode,
        at: datetime,
        actor: str,
        recipient: Recipient | None = None,
        point_of_contact: PointOfContact | None = None,
        receipt: Receipt | None = None,
    ) -> Code:
        """Create a code and issue it in the same write; DuplicateValues if the value exists."""
        number = self._allocate_numbers(pool.tenant_id, 1)
        item, pointer = self._new_code_item(
            pool.tenant_id, pool, new, number, clock.to_stored(clock.now()), actor
        )
        for name in ("avail_pk", "avail_sk"):
            del item[name]
        item["state"] = s(CodeState.ISSUED)
        item.update(_issue_attributes(at, recipient, point_of_contact))
        if receipt is None:
            self._write_codes([(item, pointer)], stage=None)
        else:
            puts = [
                {
                    "Put": {
                        "TableName": self._table.name,
                        "Item": written,
                        "ConditionExpression": _NEW_ITEM,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
                for written in (item, pointer)
            ]
            try:
                self._transact_with_receipt(puts, _key_of(item), receipt)
            except ConditionFailed:
                raise DuplicateValues([new.value]) from None
        observability.count("IssuedCodes")
        return code_from_item(item)

    def _new_code_item(
        self, tenant_id: str, pool: Pool, new: NewCode, number: int, stamped: str, actor: str
    ) -> tuple[Item, Item]:
        code_id = code_uuid(number)
        validity = new.validity
        if validity.end is None and pool.default_validity_days is not None:
            start = validity.start or clock.from_stored(stamped)
            validity = Window(validity.start, start + timedelta(days=pool.default_validity_days))
        position = keys.index_position(new.value)
        item: Item = {
            **keys.code_key(tenant_id, new.value),
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
        pointer: Item = {
            **keys.number_key(tenant_id, number),
            "value": s(new.value),
            "uuid": s(str(code_id)),
        }
        return item, pointer

    def _allocate_numbers(self, tenant_id: str, count: int) -> int:
        """Reserve ``count`` consecutive integer ids with one atomic counter update."""
        attributes = self._table.update(
            Key=keys.counter_key(tenant_id),
            UpdateExpression="ADD next_number :count",
            ExpressionAttributeValues={":count": n(count)},
            ReturnValues="UPDATED_NEW",
        )
        return int(attributes["next_number"]["N"]) - count + 1

    def created_count(self, tenant_id: str) -> int:
        """How many codes the tenant ever created: an upper bound on the values it holds."""
        item = self._table.get(keys.counter_key(tenant_id))
        return int(item["next_number"]["N"]) if item else 0

    def _write_codes(
        self,
        codes_items: Sequence[tuple[Item, Item]],
        stage: tuple[str, int] | None,
        with_pointers: bool = True,
    ) -> None:
        """One transaction; raises DuplicateValues naming every value already present."""
        actions: list[Item] = []
        for code_item, pointer in codes_items:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table.name,
                        "Item": code_item if stage is None else _staged(code_item, *stage),
                        "ConditionExpression": _NEW_ITEM,
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
                            "ConditionExpression": _NEW_ITEM,
                        }
                    }
                )
        for _ in range(2):
            try:
                self._table.transact(actions)
                return
            except TransactionCancelled as cancelled:
                duplicates, cleared = self._conflicts(cancelled, actions)
                if duplicates:
                    raise DuplicateValues(duplicates) from cancelled
                if not cleared:
                    raise StoreUnavailable("Adding codes failed; nothing was written.") from None
        raise StoreUnavailable("Adding codes failed; nothing was written.")

    def _conflicts(
        self, cancelled: TransactionCancelled, actions: Sequence[Item]
    ) -> tuple[list[str], bool]:
        """The values that are really taken, and whether abandoned staged writes were cleared."""
        duplicates, cleared = [], False
        for action, reason in zip(actions, cancelled.reasons, strict=False):
            if reason.get("Code") != "ConditionalCheckFailed":
                continue
            existing = reason.get("Item")
            if existing is not None and self._clear_if_abandoned(existing["tenant"]["S"], existing):
                cleared = True
            else:
                duplicates.append(action["Put"]["Item"]["value"]["S"])
        return duplicates, cleared

    def _add_staged(
        self, tenant_id: str, codes_items: list[tuple[Item, Item]], now: datetime, actor: str
    ) -> None:
        # Imported here: only bulk adds need threads, and cold starts should not pay for them.
        from concurrent.futures import ThreadPoolExecutor

        batch_id = uuid.uuid4().hex
        deadline = int(now.timestamp()) + self._settings.staged_write_expiry_seconds
        pointers = [pointer for _, pointer in codes_items]
        # Staged codes fill whole transactions; their id pointers need no condition (numbers
        # come from the counter) and go in cheaper batch writes alongside, all before the commit.
        with ThreadPoolExecutor(max_workers=self._settings.bulk_write_concurrency) as pool:
            futures = [
                pool.submit(self._stage_chunk, chunk, (batch_id, deadline))
                for chunk in _chunked(codes_items, TRANSACTION_LIMIT)
            ]
            futures += [
                pool.submit(self._put_pointers, chunk)
                for chunk in _chunked(pointers, BATCH_WRITE_LIMIT)
            ]
            outcomes = [future.result() for future in futures]
        duplicates = [v for o in outcomes if isinstance(o, DuplicateValues) for v in o.values]
        failed = [outcome for outcome in outcomes if outcome is not None]
        if failed or time.time() >= deadline:
            self._unstage(codes_items, batch_id)
            if duplicates:
                raise DuplicateValues(duplicates)
            raise StoreUnavailable("Adding codes failed; nothing was written.")
        if not self._commit(tenant_id, batch_id, len(codes_items), now, actor):
            self._unstage(codes_items, batch_id)
            raise StoreUnavailable("Adding codes failed; nothing was written.")

    def _commit(self, tenant_id: str, batch_id: str, count: int, now: datetime, actor: str) -> bool:
        """Write the batch's commit record: the point from which it exists. True if it did.

        When DynamoDB's answer is lost, an abort record under the same key settles the doubt:
        if it lands, the commit never will (both are conditional on the key being free); if it
        does not, the commit had landed. Readers that find the stage expired abort it the same
        way, so a late commit and a reader's abort cannot both win.
        """
        record = {
            **keys.batch_key(tenant_id, batch_id),
            "count": n(count),
            "created_at": s(clock.to_stored(now)),
            "created_by": s(actor),
        }
        try:
            self._table.put(
                Item={**record, "outcome": s(_COMMITTED)}, ConditionExpression=_NEW_ITEM
            )
        except ConditionFailed:
            # Our own retried commit, or a reader's abort of a stage that outlived its expiry.
            return self._outcome(tenant_id, batch_id, deadline=None) == _COMMITTED
        except StoreUnavailable:
            for _ in range(3):
                try:
                    return self._abort(tenant_id, batch_id) == _COMMITTED
                except StoreUnavailable:
                    continue
            raise
        return True

    def _abort(self, tenant_id: str, batch_id: str) -> str:
        """Write the batch's abort record unless it already has an outcome; the final outcome."""
        record = {**keys.batch_key(tenant_id, batch_id), "outcome": s(_ABORTED)}
        try:
            self._table.put(Item=record, ConditionExpression=_NEW_ITEM)
        except ConditionFailed:
            return self._outcome(tenant_id, batch_id, deadline=None) or _COMMITTED
        return _ABORTED

    def _outcome(self, tenant_id: str, batch_id: str, deadline: int | None) -> str | None:
        """COMMITTED, ABORTED, or None while the batch may still commit.

        A stage past its ``deadline`` whose writer never decided is aborted here, so its codes
        can be cleared. Final outcomes are remembered: they never change.
        """
        remembered = self._outcomes.get((tenant_id, batch_id))
        if remembered is not None:
            return remembered
        item = self._table.get(keys.batch_key(tenant_id, batch_id))
        outcome = None if item is None else str(item.get("outcome", {"S": _COMMITTED})["S"])
        if outcome is None and deadline is not None and deadline < time.time():
            outcome = self._abort(tenant_id, batch_id)
        if outcome is not None:
            if len(self._outcomes) >= _REMEMBERED_OUTCOMES:
                self._outcomes.clear()
            self._outcomes[(tenant_id, batch_id)] = outcome
        return outcome

    def _stage_outcome(self, tenant_id: str, item: Item) -> str | None:
        """The outcome of the batch that staged ``item``; COMMITTED for an item never staged."""
        if "staged_batch" not in item:
            return _COMMITTED
        deadline = int(item["staged_until"]["N"])
        return self._outcome(tenant_id, item["staged_batch"]["S"], deadline)

    def _visible(self, item: Item) -> bool:
        """Whether a code item exists for readers: not staged, or staged by a committed batch."""
        return self._stage_outcome(item["tenant"]["S"], item) == _COMMITTED

    def _stage_chunk(
        self, chunk: Sequence[tuple[Item, Item]], stage: tuple[str, int]
    ) -> DuplicateValues | StoreUnavailable | None:
        try:
            self._write_codes(chunk, stage, with_pointers=False)
        except (DuplicateValues, StoreUnavailable) as failure:
            return failure
        return None

    def _put_pointers(self, pointers: Sequence[Item]) -> StoreUnavailable | None:
        try:
            self._table.batch_put(pointers)
        except StoreUnavailable as failure:
            return failure
        return None

    def _unstage(self, codes_items: Sequence[tuple[Item, Item]], batch_id: str) -> None:
        """Roll back a staged batch: delete whatever of it was written."""
        code_keys = [_key_of(code_item) for code_item, _ in codes_items]
        for chunk in _chunked(code_keys, TRANSACTION_LIMIT):
            try:
                self._table.transact([self._delete_staged_action(key, batch_id) for key in chunk])
            except TransactionCancelled:
                # Some were never written, or a reader cleared them: delete one by one.
                for key in chunk:
                    self._delete_staged(key, batch_id)
        self._table.batch_delete([_key_of(pointer) for _, pointer in codes_items])

    def _delete_staged_action(self, key: Item, batch_id: str) -> Item:
        return {"Delete": {"TableName": self._table.name, **_staged_by(key, batch_id)}}

    def _delete_staged(self, key: Item, batch_id: str) -> None:
        with contextlib.suppress(ConditionFailed):  # already gone, or never staged by the batch
            self._table.delete(**_staged_by(key, batch_id))

    def _clear_if_abandoned(self, tenant_id: str, item: Item) -> bool:
        """Delete a staged item of an aborted batch (its writer died, or gave up); True if so."""
        if self._stage_outcome(tenant_id, item) != _ABORTED:
            return False
        self._delete_staged(_key_of(item), item["staged_batch"]["S"])
        return True

    # ------------------------------------------------------------------ claiming and transitions

    def claim(
        self,
        pool: Pool,
        at: datetime,
        actor: str,
        recipient: Recipient | None = None,
        point_of_contact: PointOfContact | None = None,
        receipt: Receipt | None = None,
    ) -> Code:
        """Issue any available code of ``pool``: one conditional write in the steady state.

        Candidates come from a page of the available index cached in this function and shared
        by its claims; a backdated claim reads its own page, filtered at its effective time.
        """
        ceiling = self._settings.claim_max_attempts
        backdated = clock.now() - at > _BACKDATED
        stored_at = clock.to_stored(at)
        own_page: deque[Item] = deque()
        for tried in range(ceiling * 4):
            if tried and tried % ceiling == 0:
                self._forget_candidates(pool)  # the cached page is stale: read the index afresh
            if backdated:
                own_page = own_page or deque(self._read_candidates(pool, at))
                key = own_page.popleft() if own_page else None
            else:
                key = self._next_candidate(pool, at)
            if key is None:
                observability.count("NoCodeAvailable")
                raise NoCodeAvailable
            if not _valid_at(key, stored_at):
                continue  # its window closed after its page was read: no write can issue it
            try:
                item = self._apply(
                    _key_of(key),
                    RULES[Transition.ISSUE],
                    at,
                    actor,
                    _issue_attributes(at, recipient, point_of_contact),
                    receipt,
                    key["staged_batch"]["S"] if "staged_batch" in key else None,
                    known=_available_code(pool, key),
                )
            except ConditionFailed:
                observability.count("ConflictingClaims")
                continue
            observability.count("IssuedCodes")
            return code_from_item(item)
        raise StoreUnavailable("Too many concurrent claims on this pool; retry.")

    def issue(
        self,
        tenant_id: str,
        value: str,
        at: datetime,
        actor: str,
        recipient: Recipient | None = None,
        point_of_contact: PointOfContact | None = None,
        receipt: Receipt | None = None,
    ) -> Code:
        """Issue the code with this value, if its state and validity allow it at ``at``."""
        code = self._transition(
            tenant_id,
            value,
            Transition.ISSUE,
            at,
            actor,
            _issue_attributes(at, recipient, point_of_contact),
            receipt,
        )
        observability.count("IssuedCodes")
        return code

    def redeem(
        self,
        tenant_id: str,
        value: str,
        at: datetime,
        actor: str,
        used_by: str | None = None,
        point_of_contact: PointOfContact | None = None,
        receipt: Receipt | None = None,
    ) -> Code:
        extra: Item = {
            "used_at": s(clock.to_stored(at)),
            **contact_attributes("used", point_of_contact),
        }
        if used_by is not None:
            extra["used_by"] = s(used_by)
        return self._transition(tenant_id, value, Transition.REDEEM, at, actor, extra, receipt)

    def block(self, tenant_id: str, value: str, at: datetime, actor: str) -> Code:
        return self._transition(
            tenant_id, value, Transition.BLOCK, at, actor, {"blocked_at": s(clock.to_stored(at))}
        )

    def _transition(
        self,
        tenant_id: str,
        value: str,
        transition: Transition,
        at: datetime,
        actor: str,
        extra: Item,
        receipt: Receipt | None = None,
    ) -> Code:
        key = keys.code_key(tenant_id, value)
        batch = None
        for _ in range(2):
            try:
                item = self._apply(key, RULES[transition], at, actor, extra, receipt, batch)
                return code_from_item(item)
            except ConditionFailed as failed:
                if failed.item is None:
                    raise CodeNotFound from None
                staged = failed.item.get("staged_batch", {}).get("S")
                if staged is not None and staged != batch:
                    if not self._visible(failed.item):
                        raise CodeNotFound from None
                    batch = staged  # its batch committed: the code is real, write it as such
                    continue
                if transition is Transition.ISSUE:
                    code = code_from_item(failed.item)
                    if _only_validity_failed(failed.item):
                        raise OutsideIssueWindow(code=code) from None
                    raise NotAvailableForIssue(code=code) from None
                raise TransitionRefused(
                    f"Promo code cannot go from {failed.item['state']['S']} to "
                    f"{RULES[transition].target}."
                ) from None
        raise CodeNotFound

    def _apply(
        self,
        key: Item,
        rule: Rule,
        at: datetime,
        actor: str,
        extra: Item,
        receipt: Receipt | None = None,
        batch: str | None = None,
        known: Item | None = None,
    ) -> Item:
        """The one conditional write of a transition; with a receipt, a two-item transaction.

        ``batch`` names the committed bulk add that staged the code, if the caller knows it.
        ``known`` is the code as the caller last saw it, when none of what it holds can have
        changed if the write succeeds (a claim's candidate): the code after the write is then
        assembled from it and what was written, instead of being read back. Its validity window
        is among what cannot change (it is written once, with the code), so a caller with
        ``known`` has judged it at ``at`` itself and the write leaves it out of its condition;
        and a caller with ``known`` that loses the write moves on, without reading why."""
        settled, settled_values, removals = _settled(batch)
        values: Item = {
            **settled_values,
            ":target": s(rule.target),
            ":active": s(ActivityState.ACTIVE),
            ":now": s(clock.to_stored(clock.now())),
            ":actor": s(actor),
        }
        sources = []
        for index, state in enumerate(sorted(rule.sources)):
            values[f":source{index}"] = s(state)
            sources.append(f":source{index}")
        condition = f"#state IN ({', '.join(sources)}) AND activity = :active AND {settled}"
        if rule.needs_validity and known is None:
            values[":at"] = s(clock.to_stored(at))
            condition += (
                " AND (attribute_not_exists(valid_from) OR valid_from <= :at)"
                " AND (attribute_not_exists(valid_until) OR valid_until >= :at)"
            )
        assignments = ["#state = :target", "updated_at = :now", "updated_by = :actor"]
        for index, (name, value) in enumerate(extra.items()):
            values[f":extra{index}"] = value
            assignments.append(f"{name} = :extra{index}")
        update: Item = {
            "Key": key,
            "ConditionExpression": condition,
            "UpdateExpression": (
                f"SET {', '.join(assignments)} REMOVE {_AVAILABLE_ATTRIBUTES}{removals}"
            ),
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": values,
        }
        if known is None:
            update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if receipt is None and known is None:
            return self._table.update(**update, ReturnValues="ALL_NEW")
        if receipt is None:
            self._table.update(**update)
        else:
            self._transact_with_receipt(
                [{"Update": {"TableName": self._table.name, **update}}], key, receipt
            )
        if known is None:
            return self._table.get(key) or {}
        written = {
            "state": values[":target"],
            "updated_at": values[":now"],
            "updated_by": values[":actor"],
            **extra,
        }
        return {**known, **written}

    def _transact_with_receipt(self, actions: list[Item], key: Item, receipt: Receipt) -> None:
        """``actions`` (the first on the code ``key``) and the receipt's put, atomically;
        AlreadyDone if the idempotency key was used, ConditionFailed if the code refused."""
        tenant_id, value = key["pk"]["S"][2:].split("#V#", 1)
        item: Item = {
            **keys.receipt_key(tenant_id, receipt.scope, receipt.key),
            "fingerprint": s(receipt.fingerprint),
            "value": s(value),
            "created_at": s(clock.to_stored(clock.now())),
            "expires_at": n(int(time.time()) + _RECEIPT_SECONDS),
        }
        receipt_put = {
            "Put": {
                "TableName": self._table.name,
                "Item": item,
                "ConditionExpression": _NEW_ITEM,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        try:
            self._table.transact([*actions, receipt_put])
        except TransactionCancelled as cancelled:
            reasons = [*cancelled.reasons, *([{}] * (len(actions) + 1))]
            receipt_reason = reasons[len(actions)]
            if receipt_reason.get("Code") == "ConditionalCheckFailed":
                raise AlreadyDone(_receipt_from_item(receipt_reason.get("Item"), receipt)) from None
            if reasons[0].get("Code") == "ConditionalCheckFailed":
                raise ConditionFailed(reasons[0].get("Item")) from None
            raise StoreUnavailable("The transaction was cancelled; retry.") from None

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

    def _read_candidates(self, pool: Pool, at: datetime) -> list[Item]:
        """A page of available keys from one shard, starting at a random shard and position.

        Random starts keep concurrent functions (each with its own page) off the same codes;
        an empty answer after every shard was read to its end means the pool is empty. Codes
        of bulk adds not committed (yet) are read past, not counted, so they never make a pool
        look empty.
        """
        limit = self._settings.claim_page_size
        undecided: set[str] = set()
        first = random.randrange(pool.shard_count)  # noqa: S311 - spreading load, not a secret
        for step in range(pool.shard_count):
            shard = (first + step) % pool.shard_count
            partition = keys.available_partition(pool.tenant_id, pool.pool_id, shard)
            start = f"{random.getrandbits(64):016x}"
            side = (pool.tenant_id, partition, at, undecided)
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
        outcome = self._stage_outcome(tenant_id, item)
        if outcome == _ABORTED:
            self._delete_staged(_key_of(item), batch)
        elif outcome is None:
            undecided.add(batch)
        return outcome == _COMMITTED

    def _query_available(
        self,
        tenant_id: str,
        partition: str,
        at: datetime,
        undecided: set[str],
        operator: str,
        start: str,
        limit: int,
    ) -> list[Item]:
        """Up to ``limit`` claimable codes valid at ``at`` on one side of ``start``."""
        request: dict[str, Any] = {
            "IndexName": self._layout.available_index,
            "KeyConditionExpression": f"avail_pk = :partition AND avail_sk {operator} :start",
            "FilterExpression": (
                "(attribute_not_exists(valid_from) OR valid_from <= :at)"
                " AND (attribute_not_exists(valid_until) OR valid_until >= :at)"
            ),
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

    # ------------------------------------------------------------------ reading

    def get(self, tenant_id: str, value: str) -> Code | None:
        """The code with this value: one strongly consistent read."""
        item = self._table.get(keys.code_key(tenant_id, value))
        return code_from_item(item) if item is not None and self._visible(item) else None

    def get_by_number(self, tenant_id: str, number: int) -> Code | None:
        pointer = self._table.get(keys.number_key(tenant_id, number))
        code = None if pointer is None else self.get(tenant_id, pointer["value"]["S"])
        return code if code is not None and code.number == number else None

    def get_by_uuid(self, tenant_id: str, code_id: UUID) -> Code | None:
        return self.get_many_by_uuid(tenant_id, [code_id]).get(code_id)

    def get_many_by_uuid(self, tenant_id: str, code_ids: Sequence[UUID]) -> dict[UUID, Code]:
        """The codes of this tenant among ``code_ids``; unknown and foreign ids are left out."""
        items = self._items_by_uuid(tenant_id, code_ids)
        return {code_id: code_from_item(item) for code_id, item in items.items()}

    def _items_by_uuid(self, tenant_id: str, code_ids: Sequence[UUID]) -> dict[UUID, Item]:
        numbers = {number_of(code_id): code_id for code_id in code_ids}
        numbers.pop(None, None)
        pointers = self._table.batch_get(
            [keys.number_key(tenant_id, number) for number in numbers if number is not None]
        )
        wanted = set(code_ids)
        values = {p["value"]["S"] for p in pointers if UUID(p["uuid"]["S"]) in wanted}
        found: dict[UUID, Item] = {}
        for item in self._table.batch_get([keys.code_key(tenant_id, value) for value in values]):
            # A pointer left by an add that never committed may name a value added later as
            # another code: only the code the pointer was written for counts.
            code_id = UUID(item["uuid"]["S"])
            if code_id in wanted and self._visible(item):
                found[code_id] = item
        return found

    def existing_values(self, tenant_id: str, values: Sequence[str]) -> set[str]:
        """Which of ``values`` the tenant already holds (staged ones included: they are taken)."""
        items = self._table.batch_get([keys.code_key(tenant_id, v) for v in values])
        return {item["value"]["S"] for item in items}

    def list(
        self,
        tenant_id: str,
        pool_ids: Sequence[str],
        before: str | None = None,
        inclusive: bool = False,
    ) -> Iterator[tuple[str, Code]]:
        """Codes of the given pools, newest first, with each one's position for a cursor.

        Positions come from creation time and the integer id, which never change, so a cursor
        taken from one page neither skips nor repeats codes updated or deleted meanwhile.
        """
        streams = [self._list_pool(tenant_id, p, before, inclusive) for p in pool_ids]
        yield from heapq.merge(*streams, key=lambda entry: entry[0], reverse=True)

    def _list_pool(
        self, tenant_id: str, pool_id: str, before: str | None, inclusive: bool
    ) -> Iterator[tuple[str, Code]]:
        condition = "list_pk = :partition"
        values: Item = {":partition": s(keys.listing_partition(tenant_id, pool_id))}
        if before is not None:
            condition += f" AND list_sk {'<=' if inclusive else '<'} :before"
            values[":before"] = s(before)
        request: dict[str, Any] = {
            "IndexName": self._layout.listing_index,
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
                if self._visible(item):
                    entries.append((item["list_sk"]["S"], code_from_item(item)))
            yield from sorted(entries, key=lambda entry: entry[0], reverse=True)
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def position(code: Code) -> str:
        """A code's place in listings (what ``list`` yields beside it)."""
        return keys.listing_position(clock.to_stored(code.audit.created_at), code.number)

    # ------------------------------------------------------------------ deleting

    def delete(self, tenant_id: str, code_ids: Sequence[UUID], actor: str) -> None:
        """Soft-delete codes by UUID; unknown ids are all named and nothing is deleted."""
        found = self._items_by_uuid(tenant_id, code_ids)
        unknown = [str(code_id) for code_id in code_ids if code_id not in found]
        if unknown:
            raise CodesNotFound(unknown)
        stamped = clock.to_stored(clock.now())
        live = [item for item in found.values() if item["activity"]["S"] != ActivityState.DELETED]
        for chunk in _chunked(live, TRANSACTION_LIMIT):
            self._table.transact([self._delete_action(item, stamped, actor) for item in chunk])

    def _delete_action(self, item: Item, stamped: str, actor: str) -> Item:
        settled, settled_values, removals = _settled(item.get("staged_batch", {}).get("S"))
        return {
            "Update": {
                "TableName": self._table.name,
                "Key": _key_of(item),
                "ConditionExpression": f"attribute_exists(pk) AND {settled}",
                "UpdateExpression": (
                    "SET activity = :deleted, deleted_at = :now, updated_at = :now,"
                    f" updated_by = :actor REMOVE {_AVAILABLE_ATTRIBUTES}{removals}"
                ),
                "ExpressionAttributeValues": {
                    ":deleted": s(ActivityState.DELETED),
                    ":now": s(stamped),
                    ":actor": s(actor),
                    **settled_values,
                },
            }
        }


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


def _issue_attributes(
    at: datetime, recipient: Recipient | None, point_of_contact: PointOfContact | None
) -> Item:
    attributes: Item = {
        "issued_at": s(clock.to_stored(at)),
        **contact_attributes("issued", point_of_contact),
    }
    if recipient is not None:
        attributes["issued_to_kind"] = s(recipient.kind)
        attributes["issued_to_id"] = s(recipient.identifier)
    return attributes


def _staged(item: Item, batch_id: str, deadline: int) -> Item:
    """A staged copy: invisible to readers and claims until its batch commits, and from then on
    visible as it is, marked until its first change (readers check the batch's outcome)."""
    return {**item, "staged_batch": s(batch_id), "staged_until": n(deadline)}


def _staged_by(key: Item, batch_id: str) -> Item:
    """The key and condition of a write that must touch the code only if ``batch_id`` staged it."""
    return {
        "Key": key,
        "ConditionExpression": "staged_batch = :batch",
        "ExpressionAttributeValues": {":batch": s(batch_id)},
    }


def _settled(batch: str | None) -> tuple[str, Item, str]:
    """Condition, values and REMOVE list letting a write change a code that is not staged, or
    was staged by ``batch``, known committed; the write then drops the staging marker."""
    if batch is None:
        return _NOT_STAGED, {}, ""
    return (
        f"({_NOT_STAGED} OR staged_batch = :batch)",
        {":batch": s(batch)},
        f", {_STAGE_ATTRIBUTES}",
    )


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


def _receipt_from_item(item: Item | None, asked: Receipt) -> Receipt:
    if item is None:
        return asked
    return Receipt(asked.scope, asked.key, item["fingerprint"]["S"], item["value"]["S"])


def _only_validity_failed(item: Item) -> bool:
    """Whether a refused issue of a visible code failed only on its validity window."""
    return (
        item["state"]["S"] in RULES[Transition.ISSUE].sources
        and item["activity"]["S"] == ActivityState.ACTIVE
    )


def _valid_at(candidate: Item, at: str) -> bool:
    """Whether a candidate's projected validity window holds stored time ``at``: the test the
    index query and a transition's condition make, stored times comparing as strings."""
    start, end = candidate.get("valid_from"), candidate.get("valid_until")
    return (start is None or start["S"] <= at) and (end is None or end["S"] >= at)


def _key_of(item: Item) -> Item:
    return {"pk": item["pk"], "sk": item["sk"]}


def _chunked[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
