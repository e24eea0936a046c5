"""The change stream without AWS: DynamoDB Local's stream, read in-process, delivered to the
same consumer function template.yaml subscribes to it, as Lambda's event source mapping would.

``StreamTail`` reads a table's stream (the ``dynamodbstreams`` API on DynamoDB Local's own
endpoint) and turns each record into the form Lambda delivers. ``LocalStream`` runs it for
``make run``: it applies the mapping's filter, delivers batches of the mapping's size, delivers
again from the record a batch reports as failed (at most the mapping's retries, then the batch
is logged as sent to the on-failure queue and skipped), and keeps its place in
``.local/stream-positions.json`` so a restart goes on where it stopped. ``EventFile`` is the
event bus of ``make run``: each event as an EventBridge target receives it, one JSON line each,
in ``.local/events.jsonl`` (``promo-admin events`` shows them).
"""

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from promo.event_bus import BusEvent
from tools.lambda_runtime import LambdaContext
from tools.router import Router, StreamConsumer

EVENTS_FILE = "events.jsonl"
POSITIONS_FILE = "stream-positions.json"
LambdaRecord = dict[str, Any]


def lambda_record(record: dict[str, Any], stream_arn: str) -> LambdaRecord:
    """A record of the Streams API as Lambda delivers it: JSON, the creation time in epoch
    seconds, the stream's ARN beside it."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": stream,
        "eventSourceARN": stream_arn,
    }


def matches(patterns: Sequence[str], record: LambdaRecord) -> bool:
    """Whether a record passes an event source mapping's filter (no filter: every record).
    Only what template.yaml uses: nested objects whose leaves list the values allowed."""
    if not patterns:
        return True
    return any(_matches(json.loads(pattern), record) for pattern in patterns)


def _matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and _matches(inner, value[key]) for key, inner in pattern.items()
        )
    return value in pattern


class StreamTail:
    """Every record of a table's stream from where it was last read: the shards in order, a
    child after its parent."""

    def __init__(self, streams: Any, stream_arn: str, positions: dict[str, str] | None = None):
        self.streams = streams
        self.stream_arn = stream_arn
        # Shard id -> the sequence number of the last record read from it.
        self.positions: dict[str, str] = dict(positions or {})
        self._iterators: dict[str, str | None] = {}

    @classmethod
    def of_table(cls, client: Any, streams: Any, table_name: str, **kwargs: Any) -> "StreamTail":
        arn = client.describe_table(TableName=table_name)["Table"].get("LatestStreamArn")
        if arn is None:
            raise RuntimeError(f"Table {table_name} has no stream (template.yaml enables one).")
        return cls(streams, arn, **kwargs)

    def read(self) -> list[LambdaRecord]:
        """The records written since the last read, as Lambda would deliver them."""
        found: list[LambdaRecord] = []
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
            "Shards"
        ]
        known = {shard["ShardId"] for shard in shards}
        for shard in shards:
            parent = shard.get("ParentShardId")
            if parent in known and self._iterators.get(parent, "open") is not None:
                continue  # a child waits until its parent is read to its end
            found += self._read_shard(shard["ShardId"])
        return found

    def _read_shard(self, shard_id: str) -> list[LambdaRecord]:
        if shard_id in self._iterators and self._iterators[shard_id] is None:
            return []  # closed and read to its end
        found: list[LambdaRecord] = []
        iterator = self._iterators.get(shard_id) or self._iterator(shard_id)
        for _ in range(1000):
            try:
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            except self.streams.exceptions.ExpiredIteratorException:
                page = self.streams.get_records(ShardIterator=self._iterator(shard_id), Limit=1000)
            records = page.get("Records", [])
            found += [lambda_record(record, self.stream_arn) for record in records]
            if records:
                self.positions[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
            iterator = page.get("NextShardIterator")
            if not records or iterator is None:
                break
        self._iterators[shard_id] = iterator
        return found

    def _iterator(self, shard_id: str) -> str:
        request: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
        if shard_id in self.positions:
            request |= {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "SequenceNumber": self.positions[shard_id],
            }
        else:
            request["ShardIteratorType"] = "TRIM_HORIZON"
        return str(self.streams.get_shard_iterator(**request)["ShardIterator"])


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def deliver(
    handler: Handler,
    records: Sequence[LambdaRecord],
    batch_size: int,
    max_retries: int,
    function: str = "ChangeStreamFunction",
    on_give_up: Callable[[Sequence[LambdaRecord]], None] | None = None,
) -> None:
    """Deliver ``records`` in batches as the event source mapping does: a batch answered with
    a failed record is delivered again from that record; a batch that raises is split in
    halves; after ``max_retries`` deliveries again (-1: no bound) the batch is given up."""
    pending = list(records)
    retries = 0
    size = batch_size
    while pending:
        batch = pending[:size]
        try:
            answer = handler({"Records": batch}, LambdaContext(function))
            failed = [f["itemIdentifier"] for f in answer.get("batchItemFailures", [])]
        except Exception:
            failed = [batch[0]["dynamodb"]["SequenceNumber"]]
            size = max(1, len(batch) // 2)  # BisectBatchOnFunctionError
        if not failed:
            pending, retries, size = pending[len(batch) :], 0, batch_size
            continue
        sequences = [record["dynamodb"]["SequenceNumber"] for record in batch]
        start = min((sequences.index(s) for s in failed if s in sequences), default=0)
        pending = pending[start:]
        retries += 1
        if 0 <= max_retries < retries:
            given_up, pending = pending[: len(batch) - start], pending[len(batch) - start :]
            if on_give_up is not None:
                on_give_up(given_up)
            retries, size = 0, batch_size
        else:
            time.sleep(min(0.05 * 2**retries, 1.0))


class EventFile:
    """The local event bus: each event appended to a JSON-lines file as EventBridge would hand
    it to a target (the webhook)."""

    def __init__(self, path: Path, region: str = "us-east-1") -> None:
        self.path = path
        self.region = region
        self._lock = threading.Lock()

    def __call__(self, events: Sequence[BusEvent]) -> None:
        if not events:
            return
        lines = "".join(
            json.dumps(event.envelope(self.region), ensure_ascii=False) + "\n" for event in events
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as sink:
                sink.write(lines)


class LocalStream:
    """``make run``'s event source mapping: polls the table's stream and delivers its records
    to the consumer template.yaml subscribes to it, in a thread of its own."""

    POLL_SECONDS = 0.25

    def __init__(self, router: Router, positions_file: Path) -> None:
        self._consumer: StreamConsumer | None = (
            router.stream_consumers[0] if router.stream_consumers else None
        )
        self._router = router
        self._positions_file = positions_file
        self._tail: StreamTail | None = None
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-stream", daemon=True)

    def start(self, client: Any, streams: Any, table_name: str) -> None:
        if self._consumer is None:
            return
        tail = StreamTail.of_table(client, streams, table_name)
        tail.positions = self._saved().get(tail.stream_arn, {})
        self._tail = tail
        self._thread.start()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every record written so far was delivered (tests and shutdown)."""
        if not self._thread.is_alive():
            return True
        self._idle.clear()
        return self._idle.wait(timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.drain()
            self._stop.set()
            self._thread.join(timeout=10)

    def _run(self) -> None:
        assert self._consumer is not None
        assert self._tail is not None
        consumer, tail = self._consumer, self._tail
        handler = self._router.handler(consumer.route)
        while not self._stop.is_set():
            try:
                records = [r for r in tail.read() if matches(consumer.patterns, r)]
            except Exception as exc:  # DynamoDB Local stopping, or gone for a moment
                print(f"  change stream not read: {type(exc).__name__}", file=sys.stderr)
                records = []
            if records:
                deliver(
                    handler,
                    records,
                    consumer.batch_size,
                    consumer.max_retries,
                    consumer.route.function,
                    self._gave_up,
                )
                self._save(tail)
            else:
                self._idle.set()
            self._stop.wait(self.POLL_SECONDS)

    def _gave_up(self, records: Sequence[LambdaRecord]) -> None:
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        print(
            f"  change stream records {first['SequenceNumber']}..{last['SequenceNumber']}"
            " moved to the on-failure queue (promo-admin reconcile repairs the counts)",
            file=sys.stderr,
        )

    def _saved(self) -> dict[str, dict[str, str]]:
        with contextlib.suppress(OSError, ValueError):
            saved = json.loads(self._positions_file.read_text())
            if isinstance(saved, dict):
                return saved
        return {}

    def _save(self, tail: StreamTail) -> None:
        saved = self._saved()
        saved[tail.stream_arn] = tail.positions
        self._positions_file.write_text(json.dumps(saved, indent=1))
