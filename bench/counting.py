"""DynamoDB requests counted where they are made: botocore's events on the client itself."""

import threading
from collections import Counter
from typing import Any


class Requests:
    """Counts DynamoDB requests and failed conditional writes through botocore events."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.lost = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def _after(self, parsed: Any, **_: Any) -> None:
        error = (parsed or {}).get("Error", {}).get("Code", "")
        reasons = (parsed or {}).get("CancellationReasons") or []
        if error == "ConditionalCheckFailedException" or any(
            r.get("Code") == "ConditionalCheckFailed" for r in reasons
        ):
            with self._lock:
                self.lost += 1

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.lost = 0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def snapshot(self) -> tuple[int, int, int]:
        """Requests, index queries and failed conditional writes so far."""
        with self._lock:
            return sum(self.calls.values()), self.calls["Query"], self.lost
