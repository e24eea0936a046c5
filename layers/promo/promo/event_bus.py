"""Where domain events go: the stack's EventBridge bus on AWS (``EventBusPublisher``), a file
under ``.local/`` in ``make run`` (``tools/local_stream.py``). The composition root chooses
(``promo.bootstrap``); the change stream consumer only calls a ``Publisher``.

Delivery is at least once: a batch of stream records retried after a failure publishes its
events again, under the same ``detail.id``, by which receivers drop repeats.
"""

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from promo import aws
from promo.domain.clock import format_iso8601
from promo.domain.errors import PromoError
from promo.domain.events import SOURCE
from promo.settings import Settings

# PutEvents takes at most 10 entries and 256 KB a call.
ENTRIES_PER_CALL = 10
BYTES_PER_CALL = 256 * 1024
_ATTEMPTS = 4


class BusEvent(NamedTuple):
    """An event as published: its id (which a retry repeats), kind, time and detail (which
    carries the id too)."""

    id: str
    kind: str
    at: datetime
    detail: Mapping[str, Any]

    def detail_json(self) -> str:
        return json.dumps(self.detail, ensure_ascii=False, separators=(",", ":"))

    def envelope(self, region: str, account: str = "000000000000") -> dict[str, Any]:
        """The event as an EventBridge target (the webhook) receives it."""
        return {
            "version": "0",
            "id": self.id,
            "detail-type": self.kind,
            "source": SOURCE,
            "account": account,
            "time": format_iso8601(self.at),
            "region": region,
            "resources": [],
            "detail": dict(self.detail),
        }


class EventsNotPublished(PromoError):
    """Publishing failed; every event before ``first`` was published, none from it on."""

    def __init__(self, first: int, message: str) -> None:
        super().__init__(message)
        self.first = first


Publisher = Callable[[Sequence[BusEvent]], None]


class EventBusPublisher:
    """PutEvents to the bus ``EVENT_BUS_NAME`` names, in order, entries a call as EventBridge
    allows; entries it refuses are sent again a few times. The client is made on first use:
    only the change stream consumer publishes."""

    def __init__(self, settings: Settings, session: aws.Session) -> None:
        self._bus = settings.event_bus_name
        self._region = settings.aws_region
        self._session = session
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self, events: Sequence[BusEvent]) -> None:
        if not events:
            return
        if self._bus is None:
            raise EventsNotPublished(0, "No event bus is configured (EVENT_BUS_NAME).")
        start = 0
        for chunk in _calls(events):
            self._put(chunk, start)
            start += len(chunk)

    def _put(self, chunk: Sequence[BusEvent], start: int) -> None:
        pending = list(range(len(chunk)))
        for attempt in range(_ATTEMPTS):
            entries = [self._entry(chunk[index]) for index in pending]
            try:
                answer = self._events().put_events(Entries=entries)
            except Exception as exc:
                if attempt == _ATTEMPTS - 1:
                    failure = f"PutEvents failed: {type(exc).__name__}"
                    raise EventsNotPublished(start, failure) from exc
                time.sleep(0.05 * 2**attempt)
                continue
            results = answer.get("Entries", [])
            pending = [
                index
                for index, result in zip(pending, results, strict=False)
                if result.get("ErrorCode")
            ]
            if not pending:
                return
            time.sleep(0.05 * 2**attempt)
        raise EventsNotPublished(start + pending[0], "EventBridge refused events.")

    def _entry(self, event: BusEvent) -> dict[str, Any]:
        return {
            "Source": SOURCE,
            "DetailType": event.kind,
            "Detail": event.detail_json(),
            "Time": event.at,
            "EventBusName": self._bus,
        }

    def _events(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = aws.client(self._session, "events", self._region)
            return self._client


def entry_size(event: BusEvent) -> int:
    """An entry's size as EventBridge counts it against a call's 256 KB."""
    return 14 + len(SOURCE) + len(event.kind.encode()) + len(event.detail_json().encode())


def _calls(events: Sequence[BusEvent]) -> list[list[BusEvent]]:
    calls: list[list[BusEvent]] = []
    size = 0
    for event in events:
        weight = entry_size(event)
        if not calls or len(calls[-1]) == ENTRIES_PER_CALL or size + weight > BYTES_PER_CALL:
            calls.append([])
            size = 0
        calls[-1].append(event)
        size += weight
    return calls
