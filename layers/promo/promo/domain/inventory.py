"""A pool's inventory: every code of a pool is in exactly one bucket, and a pool is OK, low or
empty by how many of its codes are available.

The buckets follow the code's lifecycle state, except that a soft-deleted code is ``deleted``
whatever its state, and a code staged by a bulk add that has not committed is ``staged``
(``promo.store.codes.bulk_staging``). A multi-use code is ``used`` from its first redemption to
its last; a redemption given back to a single-use code makes it ``issued`` again. An available
code whose validity window has closed is still ``available`` (nothing writes when a window
closes; a claim passes it over).
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import NamedTuple

from promo.domain.models import ActivityState, CodeState


class Bucket(StrEnum):
    AVAILABLE = "available"
    ISSUED = "issued"
    USED = "used"
    BLOCKED = "blocked"
    DELETED = "deleted"
    # Held by a bulk add that has not committed: invisible, unclaimable, not yet a code.
    STAGED = "staged"


_BY_STATE = {
    CodeState.AVAILABLE: Bucket.AVAILABLE,
    CodeState.ISSUED: Bucket.ISSUED,
    CodeState.USED: Bucket.USED,
    CodeState.BLOCKED: Bucket.BLOCKED,
}


def bucket(state: CodeState, activity: ActivityState, staged: bool) -> Bucket:
    """The bucket of a code in this state, activity and staging."""
    if staged:
        return Bucket.STAGED
    if activity is ActivityState.DELETED:
        return Bucket.DELETED
    return _BY_STATE[state]


class AlertLevel(StrEnum):
    OK = "OK"
    LOW = "LOW"
    EMPTY = "EMPTY"


_RANK = {AlertLevel.OK: 0, AlertLevel.LOW: 1, AlertLevel.EMPTY: 2}


def alert_level(available: int, low_watermark: int | None) -> AlertLevel:
    """EMPTY with no code available, LOW at or below the pool's watermark, OK otherwise."""
    if available <= 0:
        return AlertLevel.EMPTY
    if low_watermark is not None and available <= low_watermark:
        return AlertLevel.LOW
    return AlertLevel.OK


def crossed(
    previous: AlertLevel, current: AlertLevel, low_watermark: int | None
) -> list[AlertLevel]:
    """The thresholds the available count fell through from ``previous`` to ``current``:
    LOW (only for a pool with a watermark), then EMPTY. Rising crosses nothing: it re-arms."""
    levels = [AlertLevel.LOW, AlertLevel.EMPTY] if low_watermark is not None else [AlertLevel.EMPTY]
    return [level for level in levels if _RANK[previous] < _RANK[level] <= _RANK[current]]


class PoolCounts(NamedTuple):
    """How many codes of a pool are in each bucket, as the change stream counted them.

    ``version`` grows with every write of the counts (a repair is conditional on it); ``alert``
    is the level last announced, so a threshold is announced once per fall through it."""

    tenant_id: str
    pool_id: str
    counts: Mapping[str, int]
    version: int = 0
    alert: AlertLevel = AlertLevel.OK

    def of(self, which: Bucket) -> int:
        return int(self.counts.get(which.value, 0))

    @property
    def total(self) -> int:
        return sum(self.of(which) for which in Bucket)
