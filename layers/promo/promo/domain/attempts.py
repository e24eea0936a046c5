"""Failed validations per caller: at most ``limit`` misses per fixed window, then refused.

A miss is any validate answer other than "valid". Misses are counted in the table, one counter
per (tenant, caller, window), shared by every function instance; hits are never counted, so a
successful validate costs nothing extra. An instance that sees a count above the limit
remembers the caller here, in memory, and refuses it without reading anything until the window
ends. Windows are fixed and aligned to the epoch (wall clock, so that every instance agrees on
which counter a moment belongs to). docs/security.md (threat 20) gives the resulting bound.
"""

import threading
from datetime import datetime
from typing import NamedTuple

from promo.domain.errors import TooManyAttempts

# Blocked callers one function instance remembers. A caller dropped from a full map is
# relearned at its next miss (the shared counter still says it is over), so the bound costs
# at most one more answered miss per dropped caller, never a wrong refusal.
MAX_BLOCKED_CALLERS = 10_000

# (tenant, caller): a device and a session's user are different callers, in their own tenant.
CallerKey = tuple[str, str]


class MissWindow(NamedTuple):
    """``[start, end)`` in whole seconds since the epoch."""

    start: int
    end: int

    def seconds_left(self, at: datetime) -> int:
        return max(1, self.end - int(at.timestamp()))


class MissLimit(NamedTuple):
    """``limit`` misses per ``window_seconds``; a limit of 0 means no limit."""

    limit: int
    window_seconds: int

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def window(self, at: datetime) -> MissWindow:
        start = int(at.timestamp()) // self.window_seconds * self.window_seconds
        return MissWindow(start, start + self.window_seconds)

    def exceeded(self, misses: int) -> bool:
        """Whether a caller whose counter now reads ``misses`` is over the limit."""
        return self.enabled and misses > self.limit


class BlockedCallers:
    """Callers this instance knows to be over the limit, each until its window ends. Bounded:
    expired entries go first, then the oldest block (all windows have the same length, so the
    oldest block is the one that ends soonest)."""

    def __init__(self, max_entries: int = MAX_BLOCKED_CALLERS) -> None:
        self._max_entries = max_entries
        self._until: dict[CallerKey, MissWindow] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._until)

    def check(self, caller: CallerKey, at: datetime) -> None:
        """Raise TooManyAttempts if ``caller`` is blocked at ``at``."""
        window = self._until.get(caller)
        if window is None:
            return
        if int(at.timestamp()) < window.end:
            raise TooManyAttempts(window.seconds_left(at))
        with self._lock:
            if self._until.get(caller) is window:
                del self._until[caller]

    def block(self, caller: CallerKey, window: MissWindow, at: datetime) -> TooManyAttempts:
        """Remember ``caller`` as blocked until ``window`` ends; the refusal to answer with."""
        with self._lock:
            self._until.pop(caller, None)  # re-inserted last: the newest block
            if len(self._until) >= self._max_entries:
                self._drop(int(at.timestamp()))
            self._until[caller] = window
        return TooManyAttempts(window.seconds_left(at))

    def _drop(self, now: int) -> None:
        for caller in [c for c, window in self._until.items() if window.end <= now]:
            del self._until[caller]
        while len(self._until) >= self._max_entries:
            del self._until[next(iter(self._until))]
