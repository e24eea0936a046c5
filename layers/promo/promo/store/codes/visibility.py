"""Whether a code exists for readers: a code staged by a bulk add exists from the moment its
batch's commit record is written, and never if the batch is aborted.

A batch's outcome is decided once, by whichever conditional put of its record lands first
(the writer's commit, or an abort by the writer or by a reader that met the stage past its
deadline), so a late commit and a reader's abort cannot both win. Final outcomes never change,
so each function instance reads one at most once.
"""

import contextlib
import time

from promo.store import keys
from promo.store.items import Item, key_of, n, s
from promo.store.table import ConditionFailed, Table

COMMITTED, ABORTED = "COMMITTED", "ABORTED"
NEW_ITEM = "attribute_not_exists(pk)"
NOT_STAGED = "attribute_not_exists(staged_batch)"
STAGE_ATTRIBUTES = "staged_batch, staged_until"
# Final batch outcomes remembered per function instance; each is read once, then never changes.
_REMEMBERED_OUTCOMES = 10_000


class BatchOutcomes:
    """Outcomes of bulk-add batches, read from their records and remembered once final."""

    def __init__(self, table: Table) -> None:
        self._table = table
        # (tenant, batch) -> (final outcome, commit time in ms since the epoch; 0 if unknown)
        self._outcomes: dict[tuple[str, str], tuple[str, int]] = {}

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
            outcome = self.abort(tenant_id, batch_id)
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

    def delete_staged(self, key: Item, batch_id: str) -> None:
        with contextlib.suppress(ConditionFailed):  # already gone, or never staged by the batch
            self._table.delete(**staged_by(key, batch_id))

    def clear_staged(self, tenant_id: str, item: Item) -> None:
        """Delete a code staged by an aborted batch and the id pointer written for it (unless
        the pointer now names another code), so an abandoned stage leaves nothing behind."""
        self.delete_staged(key_of(item), item["staged_batch"]["S"])
        with contextlib.suppress(ConditionFailed):
            self._table.delete(
                Key=keys.number_key(tenant_id, int(item["number"]["N"])),
                ConditionExpression="#uuid = :uuid",
                ExpressionAttributeNames={"#uuid": "uuid"},
                ExpressionAttributeValues={":uuid": item["uuid"]},
            )

    def clear_if_abandoned(self, tenant_id: str, item: Item) -> bool:
        """Clear a staged item of an aborted batch (its writer died, or gave up); True if so."""
        if self.of_item(tenant_id, item) != ABORTED:
            return False
        self.clear_staged(tenant_id, item)
        return True

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


def staged(item: Item, batch_id: str, deadline: int) -> Item:
    """A staged copy: invisible to readers and claims until its batch commits, and from then on
    visible as it is, marked until its first change (readers check the batch's outcome)."""
    return {
        **item,
        "staged_batch": s(batch_id),
        "staged_until": n(deadline),
        # Kept after the marker goes: which add a code came in with (readers' snapshots).
        "added_batch": s(batch_id),
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
        f", {STAGE_ATTRIBUTES}",
    )
