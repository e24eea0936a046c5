"""Whether a code exists for readers: a code staged by a bulk add exists from the moment its
batch's commit record is written, and never if the batch is aborted.

A batch's outcome is decided once, by whichever conditional put of its record lands first
(the writer's commit, or an abort by the writer or by a reader that met the stage past its
deadline), so a late commit and a reader's abort cannot both win. Final outcomes never change,
so each function instance reads one at most once.
"""

import contextlib
import time
from collections.abc import Sequence
from typing import NamedTuple

from promo.domain.errors import StoreUnavailable
from promo.store import keys
from promo.store.items import Item, key_of, n, s
from promo.store.table import (
    TRANSACTION_LIMIT,
    ConditionFailed,
    Table,
    TransactionCancelled,
    chunked,
)

COMMITTED, ABORTED = "COMMITTED", "ABORTED"
NEW_ITEM = "attribute_not_exists(pk)"
NOT_STAGED = "attribute_not_exists(staged_batch)"
STAGE_ATTRIBUTES = "staged_batch, staged_until"
# What a code's first change removes: the marker, and the batch's numbers (not in the index).
_STAGE_MARKS = f"{STAGE_ATTRIBUTES}, staged_first, staged_count, staged_pools"
# Final batch outcomes remembered per function instance; each is read once, then never changes.
_REMEMBERED_OUTCOMES = 10_000


class Stage(NamedTuple):
    """What marks the codes of one staged bulk add: its batch, the deadline past which anyone may
    abort it, its integer ids (consecutive: one counter update allocated them) and its pools.
    Whoever clears the aborted batch finds its pointers by those ids, and its codes in the
    listing index, where they sit side by side (same creation time, consecutive ids)."""

    batch_id: str
    deadline: int
    first_number: int
    size: int
    pools: tuple[str, ...]


class BatchOutcomes:
    """Outcomes of bulk-add batches, read from their records and remembered once final."""

    def __init__(self, table: Table) -> None:
        self._table = table
        # (tenant, batch) -> (final outcome, commit time in ms since the epoch; 0 if unknown)
        self._outcomes: dict[tuple[str, str], tuple[str, int]] = {}
        # Aborted batches this instance cleared whole; a code of one met later is cleared alone.
        self._cleared: set[str] = set()

    def abort(self, tenant_id: str, batch_id: str) -> str:
        """Write the batch's abort record unless it already has an outcome; the final outcome."""
        record = {**keys.batch_key(tenant_id, batch_id), "outcome": s(ABORTED)}
        try:
            self._table.put(Item=record, ConditionExpression=NEW_ITEM)
        except ConditionFailed:
            return self.outcome(tenant_id, batch_id, deadline=None) or COMMITTED
        return ABORTED

    def outcome(self, tenant_id: str, batch_id: str, deadline: int | None) -> str | None:
        """COMMITTED, ABORTED, or None while the batch may still commit.

        A stage past its ``deadline`` whose writer never decided is aborted here, so its codes
        can be cleared. Final outcomes are remembered: they never change.
        """
        return self.record(tenant_id, batch_id, deadline)[0]

    def record(self, tenant_id: str, batch_id: str, deadline: int | None) -> tuple[str | None, int]:
        """The batch's outcome and, when committed, its commit time (ms; 0 for a record
        written before commit times were kept)."""
        remembered = self._outcomes.get((tenant_id, batch_id))
        if remembered is not None:
            return remembered
        item = self._table.get(keys.batch_key(tenant_id, batch_id))
        outcome = None if item is None else str(item.get("outcome", {"S": COMMITTED})["S"])
        committed_at = int(item["committed_at"]["N"]) if item and "committed_at" in item else 0
        if outcome is None and deadline is not None and deadline < time.time():
            try:
                outcome = self.abort(tenant_id, batch_id)
            except StoreUnavailable:
                # A function that may only read (validate, listings) or a throttled table: the
                # batch stays undecided here, so its codes stay what they are to every reader
                # until a commit lands, invisible; a function that may write settles it.
                return None, 0
        if outcome is None:
            return None, 0
        if len(self._outcomes) >= _REMEMBERED_OUTCOMES:
            self._outcomes.clear()
        self._outcomes[(tenant_id, batch_id)] = (outcome, committed_at)
        return outcome, committed_at

    def of_item(self, tenant_id: str, item: Item) -> str | None:
        """The outcome of the batch that staged ``item``; COMMITTED for an item never staged."""
        if "staged_batch" not in item:
            return COMMITTED
        deadline = int(item["staged_until"]["N"])
        return self.outcome(tenant_id, item["staged_batch"]["S"], deadline)

    def visible(self, item: Item) -> bool:
        """Whether a code item exists for readers: not staged, or staged by a committed batch."""
        return self.of_item(item["tenant"]["S"], item) == COMMITTED

    def clear_staged(self, tenant_id: str, item: Item) -> None:
        """Delete a code staged by an aborted batch with its id pointer and, the first time this
        instance meets the batch, every other code and pointer of the batch, so an abandoned
        stage leaves nothing behind whatever moment its writer died at."""
        batch_id = item["staged_batch"]["S"]
        whole = item
        if "staged_count" not in item and batch_id not in self._cleared:
            # An index entry: the index does not carry the batch's ids and pools, the item does.
            whole = self._table.get(key_of(item)) or item
        if batch_id in self._cleared or "staged_count" not in whole:
            # Cleared already (this is an index entry read before, or a stage that landed
            # late), or staged before stages named their ids: this code alone.
            self._table.batch_delete([keys.number_key(tenant_id, int(item["number"]["N"]))])
            self.delete_codes(batch_id, [key_of(item)])
            return
        self.clear_batch(tenant_id, whole)
        if len(self._cleared) >= _REMEMBERED_OUTCOMES:
            self._cleared.clear()
        self._cleared.add(batch_id)  # once done: a clear that failed part-way is tried again

    def clear_batch(self, tenant_id: str, staged_item: Item) -> None:
        """Delete every pointer and code of the aborted batch that staged ``staged_item``.

        Pointers go first: a pointer is written only once its code has landed, so while any
        pointer of the batch exists a staged code of it does too, and whoever meets that code
        clears the batch again. The codes are found in the listing index by their pools,
        creation time and ids (the deadline has passed long after the index caught up)."""
        batch_id = staged_item["staged_batch"]["S"]
        first, count = int(staged_item["staged_first"]["N"]), int(staged_item["staged_count"]["N"])
        numbers = range(first, first + count)
        pointers = self._table.batch_get([keys.number_key(tenant_id, k) for k in numbers], "pk, sk")
        self._table.batch_delete([key_of(pointer) for pointer in pointers])
        created = staged_item["created_at"]["S"]
        code_keys: list[Item] = []
        for pool_id in staged_item["staged_pools"]["SS"]:
            entries = self._table.paginate(
                self._table.query,
                IndexName=keys.TableLayout().listing_index,
                KeyConditionExpression="list_pk = :partition AND list_sk BETWEEN :first AND :last",
                ExpressionAttributeValues={
                    ":partition": s(keys.listing_partition(tenant_id, pool_id)),
                    ":first": s(keys.listing_position(created, first)),
                    ":last": s(keys.listing_position(created, first + count - 1)),
                },
            )
            code_keys += [{"pk": entry["pk"], "sk": entry["sk"]} for entry in entries]
        self.delete_codes(batch_id, code_keys)

    def delete_codes(self, batch_id: str, code_keys: Sequence[Item]) -> None:
        """Delete the codes among ``code_keys`` still staged by ``batch_id``, 100 a transaction;
        one no longer staged by it (cleared already, or never written) is left alone."""
        for chunk in chunked(code_keys, TRANSACTION_LIMIT):
            actions = [
                {"Delete": {"TableName": self._table.name, **staged_by(key, batch_id)}}
                for key in chunk
            ]
            while actions:
                try:
                    self._table.transact(actions)
                    break
                except TransactionCancelled as cancelled:
                    refused = {
                        index
                        for index, reason in enumerate(cancelled.reasons)
                        if reason.get("Code") == "ConditionalCheckFailed"
                    }
                    if not refused:
                        raise StoreUnavailable("Clearing an aborted bulk add failed.") from None
                    actions = [a for index, a in enumerate(actions) if index not in refused]

    def settle(self, tenant_id: str, item: Item) -> str | None:
        """The outcome of the batch that staged ``item`` (COMMITTED if never staged), clearing
        the stage if that batch aborted, so it stops coming back. The clear is housekeeping,
        not the reader's answer: a function that may not delete leaves it to others."""
        outcome = self.of_item(tenant_id, item)
        if outcome == ABORTED:
            with contextlib.suppress(StoreUnavailable):
                self.clear_staged(tenant_id, item)
        return outcome

    def snapshot(self) -> "Snapshot":
        return Snapshot(self)


class Snapshot:
    """What one answer shows of the bulk adds: the batches committed before the answer began,
    each whole, and nothing of the others. A batch's codes are all staged before its commit
    time is taken, so an answer that began after it finds every one of them in the index; an
    answer that began before it shows none, even a code of the batch whose first change (a
    claim, an issue) dropped its staging marker meanwhile — every staged code keeps the id of
    the add that staged it."""

    def __init__(self, outcomes: BatchOutcomes) -> None:
        self._outcomes = outcomes
        self._began = int(time.time() * 1000)
        self._decided: dict[str, bool] = {}

    def visible(self, item: Item) -> bool:
        marker = item.get("staged_batch") or item.get("added_batch")
        batch = None if marker is None else str(marker["S"])
        if batch is None:
            return True
        decided = self._decided.get(batch)
        if decided is None:
            staged_until = item.get("staged_until")
            deadline = int(staged_until["N"]) if staged_until else None
            outcome, committed_at = self._outcomes.record(item["tenant"]["S"], batch, deadline)
            decided = outcome == COMMITTED and committed_at < self._began
            self._decided[batch] = decided
        return decided


def staged(item: Item, stage: Stage) -> Item:
    """A staged copy: invisible to readers and claims until its batch commits, and from then on
    visible as it is, marked until its first change (readers check the batch's outcome)."""
    return {
        **item,
        "staged_batch": s(stage.batch_id),
        "staged_until": n(stage.deadline),
        "staged_first": n(stage.first_number),
        "staged_count": n(stage.size),
        "staged_pools": {"SS": sorted(stage.pools)},
        # Kept after the marker goes: which add a code came in with (readers' snapshots).
        "added_batch": s(stage.batch_id),
    }


def staged_by(key: Item, batch_id: str) -> Item:
    """The key and condition of a write that must touch the code only if ``batch_id`` staged it."""
    return {
        "Key": key,
        "ConditionExpression": "staged_batch = :batch",
        "ExpressionAttributeValues": {":batch": s(batch_id)},
    }


def settled(batch: str | None) -> tuple[str, Item, str]:
    """Condition, values and REMOVE list letting a write change a code that is not staged, or
    was staged by ``batch``, known committed; the write then drops the staging marker."""
    if batch is None:
        return NOT_STAGED, {}, ""
    return (
        f"({NOT_STAGED} OR staged_batch = :batch)",
        {":batch": s(batch)},
        f", {_STAGE_MARKS}",
    )
