"""A small time-bounded cache for configuration and credentials read on every request.

The TTL is the promise made to operators: a revoked credential or an edited pool takes effect in a
warm function at most this many seconds later.
"""

import threading
import time
from collections.abc import Callable


class TtlCache[K, V]:
    def __init__(self, ttl_seconds: float, max_entries: int = 4096) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        self._keep(key, value, now)
        return value

    def put(self, key: K, value: V) -> None:
        """What this process just wrote: the next read needs no request."""
        self._keep(key, value, time.monotonic())

    def _keep(self, key: K, value: V, read_at: float) -> None:
        # The TTL counts from before the read, so nothing is served older than promised.
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (read_at + self._ttl, value)

    def forget(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)
