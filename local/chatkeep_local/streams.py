"""The DynamoDB Streams -> Lambda event source mapping, emulated.

A poller thread reads the table's stream (the dynamodbstreams API of the embedded moto server, or of
the DynamoDB given with --endpoint-url), turns each record into the shape Lambda delivers
(https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html) and invokes the consumer in batches of
the template's BatchSize, waiting at most MaximumBatchingWindowInSeconds. Failures are handled as the
event source mapping does:

- a function error (exception): the whole batch failed; with BisectBatchOnFunctionError it is split in
  two and each half retried;
- with ReportBatchItemFailures, `{"batchItemFailures": [{"itemIdentifier": seq}, ...]}`: everything
  before the lowest reported sequence number is done, the rest is retried; an empty/null/unknown
  itemIdentifier, or a batchItemFailures that is not a list, fails the whole batch (a malformed
  response); an empty list or null response is success;
- after MaximumRetryAttempts retries (or when a record is older than MaximumRecordAgeInSeconds) the
  failed records go to the on-failure destination: here a local DLQ (in memory + a JSON-lines file).
  AWS sends only the batch's metadata there; locally the records are included too, for debugging.

Records are processed strictly in order, one batch at a time, as Lambda does for one shard.

The poller remembers, per shard, the sequence number of the last record it read, and asks for a new
iterator after it (AFTER_SEQUENCE_NUMBER) on every poll instead of following NextShardIterator from one
poll to the next: moto rolls a cancelled TransactWriteItems back by putting a deep copy of the table
(stream shard included, same ShardId) in its place, and an iterator kept across that points at the
discarded copy for ever (no error, no records). A shard read to its end without a NextShardIterator is
closed and not read again.
"""

from __future__ import annotations

import base64
import json
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatkeep_local.template import REGION, StreamSource, function_arn

log = logging.getLogger("chatkeep_local.stream")

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
LOCAL_MAX_RETRIES = 10  # stands in for -1 ("retry until the record expires", 24 h in AWS)


# ------------------------------------------------------------------------------------ swept-keys


def key_id(table: str, keys: Mapping[str, Any]) -> tuple[str, str]:
    return table, json.dumps(_jsonable(keys), sort_keys=True, separators=(",", ":"))


class SweptKeys:
    """Keys the TTL sweeper deleted: their REMOVE records get the DynamoDB service identity."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], int] = {}

    def add(self, table: str, keys: Mapping[str, Any]) -> None:
        k = key_id(table, keys)
        with self._lock:
            self._keys[k] = self._keys.get(k, 0) + 1

    def discard(self, table: str, keys: Mapping[str, Any]) -> None:
        self.claim(table, keys)

    def claim(self, table: str, keys: Mapping[str, Any]) -> bool:
        """True (once per sweep) if this key's REMOVE was a TTL delete."""
        k = key_id(table, keys)
        with self._lock:
            n = self._keys.get(k, 0)
            if not n:
                return False
            if n == 1:
                del self._keys[k]
            else:
                self._keys[k] = n - 1
            return True

    def __len__(self) -> int:
        return sum(self._keys.values())


# ------------------------------------------------------------------------------------------ records


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def to_lambda_record(
    raw: Mapping[str, Any],
    *,
    table: str,
    stream_arn: str,
    swept: SweptKeys | None = None,
    region: str = REGION,
) -> dict[str, Any]:
    """A GetRecords record (boto3 shape) -> the record Lambda puts in `event["Records"]`."""
    ddb = raw.get("dynamodb") or {}
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        created_s: float = created.timestamp()
    else:
        created_s = float(created or time.time())
    out_ddb: dict[str, Any] = {"ApproximateCreationDateTime": int(created_s)}
    for k in ("Keys", "NewImage", "OldImage"):
        if k in ddb:
            out_ddb[k] = _jsonable(ddb[k])
    out_ddb["SequenceNumber"] = str(ddb.get("SequenceNumber"))
    out_ddb["SizeBytes"] = int(ddb.get("SizeBytes") or 0)
    out_ddb["StreamViewType"] = ddb.get("StreamViewType", "NEW_AND_OLD_IMAGES")
    record: dict[str, Any] = {
        "eventID": raw.get("eventID") or uuid.uuid4().hex,
        "eventName": raw.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion") or region,
        "dynamodb": out_ddb,
    }
    identity = raw.get("userIdentity")
    if identity:
        record["userIdentity"] = _jsonable(identity)
    elif raw.get("eventName") == "REMOVE" and swept is not None and swept.claim(table, ddb.get("Keys") or {}):
        record["userIdentity"] = dict(TTL_IDENTITY)
    record["eventSourceARN"] = stream_arn
    return record


def sequence_number(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


# ---------------------------------------------------------------------------------------------- DLQ


class LocalDlq:
    """The on-failure destination, locally: a list plus a JSON-lines file."""

    def __init__(self, path: str | Path | None = None):
        if path is None:
            path = Path(tempfile.mkdtemp(prefix="chatkeep-dlq-")) / "dlq.jsonl"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.items: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(message, default=str) + "\n")
            self.items.append(message)  # after the write: a send that raised has sent nothing
        info = message.get("DDBStreamBatchInfo", {})
        log.warning(
            "DLQ: %s records %s..%s (%s) -> %s",
            info.get("batchSize"),
            info.get("startSequenceNumber"),
            info.get("endSequenceNumber"),
            message.get("requestContext", {}).get("condition"),
            self.path,
        )

    def __len__(self) -> int:
        return len(self.items)


# --------------------------------------------------------------------------------------- dispatcher


@dataclass
class DispatchStats:
    invocations: int = 0
    records_succeeded: int = 0
    records_dead: int = 0
    retries: int = 0
    bisects: int = 0
    function_errors: int = 0
    partial_failures: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Work:
    records: list[dict[str, Any]]
    attempts: int = 0  # retries already made for these records
    invokes: int = field(default=0)


class BatchDispatcher:
    """Delivers one batch the way the event source mapping does (retries, bisect, partial failures, DLQ).

    `invoke(event)` calls the function; it returns the function's response or raises (function error)."""

    def __init__(
        self,
        invoke: Callable[[dict[str, Any]], Any],
        source: StreamSource,
        dlq: LocalDlq,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_s: float = 0.05,
        clock: Callable[[], float] = time.time,
    ):
        self.invoke = invoke
        self.source = source
        self.dlq = dlq
        self.on_event = on_event
        self.sleep = sleep
        self.backoff_s = backoff_s
        self.clock = clock
        self.stats = DispatchStats()
        # Records of the current dispatch neither delivered nor dead-lettered yet: what is left to do
        # when dispatch raises for something other than a function error (a local file write).
        self.unfinished: list[dict[str, Any]] = []
        retries = source.max_retry_attempts
        self.max_retries = LOCAL_MAX_RETRIES if retries is None or retries < 0 else retries

    def _outcome(self, records: list[dict[str, Any]]) -> tuple[str, int | None]:
        """('ok'|'error'|'partial'|'invalid', index of the lowest failed record for 'partial')."""
        event = {"Records": records}
        if self.on_event:
            self.on_event(event)
        self.stats.invocations += 1
        try:
            response = self.invoke(event)
        except (Exception, SystemExit):  # Lambda reports sys.exit() in a handler as a function error
            log.exception("%s: function error on a batch of %d", self.source.function, len(records))
            self.stats.function_errors += 1
            return "error", None
        if not self.source.report_batch_item_failures or not isinstance(response, dict):
            return "ok", None
        failures = response.get("batchItemFailures")
        if failures is not None and not isinstance(failures, list | tuple):  # a tuple is sent as a JSON array
            log.warning("%s: malformed response, batchItemFailures is not a list (%r): whole batch failed",
                        self.source.function, failures)
            return "invalid", None
        if not failures:
            return "ok", None
        seqs = {sequence_number(r): i for i, r in enumerate(records)}
        indexes = []
        for f in failures:
            ident = f.get("itemIdentifier") if isinstance(f, dict) else None
            if not ident or str(ident) not in seqs:
                log.warning("%s: malformed response, invalid itemIdentifier in %r: whole batch failed",
                            self.source.function, f)
                return "invalid", None
            indexes.append(seqs[str(ident)])
        self.stats.partial_failures += 1
        return "partial", min(indexes)

    def _expired(self, record: dict[str, Any], now: float) -> bool:
        max_age = self.source.max_record_age_s
        if max_age is None or max_age < 0:
            return False
        return now - record["dynamodb"]["ApproximateCreationDateTime"] > max_age

    def _finished(self, records: list[dict[str, Any]]) -> None:
        done = {id(r) for r in records}
        self.unfinished = [r for r in self.unfinished if id(r) not in done]

    def dispatch(self, records: list[dict[str, Any]]) -> None:
        self.unfinished = list(records)
        queue: list[_Work] = [_Work(list(records))]
        while queue:
            work = queue.pop(0)
            if not work.records:
                continue
            # One reading of the clock per attempt: a record that comes of age between two readings
            # would be both too old and fresh, dead-lettered and delivered.
            now = self.clock()
            fresh = [r for r in work.records if not self._expired(r, now)]
            if len(fresh) != len(work.records):
                old = [r for r in work.records if self._expired(r, now)]
                self._dead(old, "RecordAgeExceeded", work.invokes)
                work.records = fresh
                if not fresh:
                    continue
            status, index = self._outcome(work.records)
            work.invokes += 1
            if status == "ok":
                self.stats.records_succeeded += len(work.records)
                self._finished(work.records)
                continue
            if status == "partial":
                assert index is not None
                self.stats.records_succeeded += index
                self._finished(work.records[:index])
                remaining = work.records[index:]
            else:
                remaining = work.records
            if work.attempts >= self.max_retries:
                self._dead(remaining, "RetryAttemptsExhausted", work.invokes)
                continue
            self.stats.retries += 1
            self.sleep(min(self.backoff_s * (2**work.attempts), 1.0))
            if status == "error" and self.source.bisect_on_error and len(remaining) > 1:
                self.stats.bisects += 1
                mid = len(remaining) // 2
                queue[0:0] = [
                    _Work(remaining[:mid], work.attempts + 1, work.invokes),
                    _Work(remaining[mid:], work.attempts + 1, work.invokes),
                ]
            else:
                queue.insert(0, _Work(remaining, work.attempts + 1, work.invokes))

    def _dead(self, records: list[dict[str, Any]], condition: str, invokes: int) -> None:
        first, last = records[0], records[-1]
        arn = first.get("eventSourceARN", "")
        self.dlq.send(
            {
                "requestContext": {
                    "requestId": str(uuid.uuid4()),
                    "functionArn": function_arn(self.source.function),
                    "condition": condition,
                    "approximateInvokeCount": invokes,
                },
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled",
                },
                "version": "1.0",
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "DDBStreamBatchInfo": {
                    "shardId": first.get("_shardId", "shardId-local"),
                    "startSequenceNumber": sequence_number(first),
                    "endSequenceNumber": sequence_number(last),
                    "approximateArrivalOfFirstRecord": _iso(first["dynamodb"]["ApproximateCreationDateTime"]),
                    "approximateArrivalOfLastRecord": _iso(last["dynamodb"]["ApproximateCreationDateTime"]),
                    "batchSize": len(records),
                    "streamArn": arn,
                },
                "records": records,  # local only: AWS sends the batch info, not the records
            }
        )
        self.stats.records_dead += len(records)  # once sent: a failed send leaves them to retry
        self._finished(records)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------- poller


class StreamPoller(threading.Thread):
    """Reads one table's stream and feeds the dispatcher, batch by batch, in order."""

    def __init__(
        self,
        streams_client: Any,
        table_name: str,
        source: StreamSource,
        dispatcher: BatchDispatcher,
        *,
        swept: SweptKeys | None = None,
        poll_interval: float = 0.25,
        housekeeping: Callable[[], None] | None = None,
    ):
        super().__init__(name=f"stream-poller-{table_name}", daemon=True)
        self.housekeeping = housekeeping  # called every 30 s from the poller thread
        self.client = streams_client
        self.table_name = table_name
        self.source = source
        self.dispatcher = dispatcher
        self.swept = swept
        self.poll_interval = poll_interval
        self.stream_arn: str | None = None
        self._shards: list[str] = []  # shards being read, in the order they appeared
        self._positions: dict[str, str] = {}  # shard -> sequence number of the last record read
        self._closed: set[str] = set()  # shards read to their end (no NextShardIterator)
        self._buffer: list[dict[str, Any]] = []
        self._first_buffered_at: float | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._drain_requested = 0
        self._drain_done = 0
        self.records_seen = 0
        self.error: str | None = None  # the error of the last loop, None once a loop succeeds
        self.last_error: dict[str, Any] | None = None  # the most recent error, kept: {error, at, count}
        self.errors = 0
        self._last_shard_refresh = 0.0
        self._last_housekeeping = time.monotonic()

    # -- control
    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def drain(self, timeout: float = 30.0) -> dict[str, Any]:
        """Block until every record in the stream at call time (and what processing it wrote to the
        stream in turn) has been delivered. Returns counters."""
        with self._cond:
            self._drain_requested += 1
            target = self._drain_requested
            self._cond.notify_all()
            ok = self._cond.wait_for(
                lambda: self._drain_done >= target or not self.is_alive(), timeout=timeout
            )
        drained = bool(ok and self._drain_done >= target and self.is_alive())
        return {"drained": drained, **self.counters()}

    def counters(self) -> dict[str, Any]:
        return {
            "records": self.records_seen,
            "pending": len(self._buffer),
            "dlq": len(self.dispatcher.dlq),
            **self.dispatcher.stats.as_dict(),
            "errors": self.errors,
            "positions": dict(self._positions),
        }

    # -- stream access
    def _find_stream(self) -> str | None:
        streams = self.client.list_streams(TableName=self.table_name).get("Streams") or []
        return streams[-1]["StreamArn"] if streams else None

    def _refresh_shards(self) -> None:
        """Track every shard not seen yet: the first ones from the mapping's StartingPosition, the ones
        that appear later (children of split shards) from TRIM_HORIZON."""
        assert self.stream_arn
        desc = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        first = not self._shards
        for shard in desc.get("Shards") or []:
            sid = shard["ShardId"]
            if sid in self._shards:
                continue
            self._shards.append(sid)
            if first and self.source.starting_position == "LATEST":
                self._skip_to_end(sid)  # prime() runs before serving: nothing written later is missed
        self._last_shard_refresh = time.monotonic()

    def _skip_to_end(self, sid: str) -> None:
        """LATEST, as a position: just after the last record the shard holds now (TRIM_HORIZON if none)."""
        while sid not in self._closed:
            raws = self._read(sid)
            if not raws:
                return
            self._positions[sid] = str(raws[-1]["dynamodb"]["SequenceNumber"])

    def _shard_iterator(self, sid: str) -> str | None:
        """A fresh iterator just after the last record read (never one kept from an earlier poll)."""
        assert self.stream_arn
        seq = self._positions.get(sid)
        if seq is not None:
            kw: dict[str, Any] = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seq}
        else:
            kw = {"ShardIteratorType": "TRIM_HORIZON"}
        return self.client.get_shard_iterator(StreamArn=self.stream_arn, ShardId=sid, **kw)["ShardIterator"]

    def _read(self, sid: str) -> list[dict[str, Any]]:
        """One GetRecords after the shard's position (the caller moves the position)."""
        resp = self.client.get_records(ShardIterator=self._shard_iterator(sid), Limit=1000)
        raws = resp.get("Records") or []
        if not raws and not resp.get("NextShardIterator"):
            self._closed.add(sid)
        return raws

    def prime(self) -> bool:
        """Find the stream and position the iterators (call before serving, so LATEST misses nothing)."""
        if self.stream_arn is None:
            self.stream_arn = self._find_stream()
            if self.stream_arn is None:
                return False
            self._refresh_shards()
        return True

    def _poll(self) -> int:
        if self.stream_arn is None:
            if not self.prime():
                return 0
        elif time.monotonic() - self._last_shard_refresh > 5:
            self._refresh_shards()
        assert self.stream_arn is not None  # prime() found it
        count = 0
        for sid in list(self._shards):
            if sid in self._closed:
                continue
            raws = self._read(sid)
            if not raws:
                continue
            recs = [
                to_lambda_record(raw, table=self.table_name, stream_arn=self.stream_arn, swept=self.swept)
                for raw in raws
            ]
            self._buffer.extend(recs)  # buffered, then the position moves: a record is never skipped
            self._positions[sid] = str(raws[-1]["dynamodb"]["SequenceNumber"])
            count += len(recs)
        if count and self._first_buffered_at is None:
            self._first_buffered_at = time.monotonic()
        self.records_seen += count
        return count

    def _should_dispatch(self, draining: bool) -> bool:
        if not self._buffer:
            return False
        if draining or len(self._buffer) >= self.source.batch_size:
            return True
        assert self._first_buffered_at is not None
        return time.monotonic() - self._first_buffered_at >= self.source.max_batching_window_s

    def _dispatch_ready(self, draining: bool) -> None:
        while self._should_dispatch(draining):
            batch = self._buffer[: self.source.batch_size]
            del self._buffer[: self.source.batch_size]
            self._first_buffered_at = time.monotonic() if self._buffer else None
            try:
                self.dispatcher.dispatch(batch)
            except BaseException:
                # not a function error (those the dispatcher handles): keep what it did not deliver or
                # dead-letter yet, retry that next loop (what it did is not sent again)
                self._buffer[0:0] = self.dispatcher.unfinished
                self._first_buffered_at = self._first_buffered_at or time.monotonic()
                raise

    def _failed(self, exc: BaseException) -> None:
        """Log (once per distinct error, then every 100th) and remember an error; polling goes on."""
        self.errors += 1
        text = repr(exc)
        same = self.last_error is not None and self.last_error["error"] == text
        count = self.last_error["count"] + 1 if same and self.last_error else 1
        if count == 1 or count % 100 == 0:
            log.error("stream poller for %s (x%d): %s", self.table_name, count, text, exc_info=exc)
        self.error = text
        self.last_error = {"error": text, "at": datetime.now(UTC).isoformat(), "count": count}

    def _loop_once(self) -> None:
        started = time.monotonic()
        with self._cond:
            requested = self._drain_requested
        draining = requested > self._drain_done
        try:
            new = self._poll()
            self._dispatch_ready(draining)
            if self.housekeeping and time.monotonic() - self._last_housekeeping > 30:
                self._last_housekeeping = time.monotonic()
                self.housekeeping()
            self.error = None
        except BaseException as exc:  # the emulator must keep running; say what happened
            self._failed(exc)
            self._stop.wait(max(self.poll_interval, 0.5))  # no busy loop on a persistent error
            return  # a drain in progress stays pending (its caller times out: 504) until a clean pass
        if draining and new == 0 and not self._buffer:
            # every shard was read to its end with a fresh iterator and everything read was delivered
            with self._cond:
                self._drain_done = max(self._drain_done, requested)
                self._cond.notify_all()
            return
        with self._cond:
            if self._drain_requested > self._drain_done:
                return
            # Polls start poll_interval apart (Lambda: "4 times per second"), so the time a poll and its batch
            # took is not added to the wait before the next one.
            self._cond.wait(timeout=max(0.0, self.poll_interval - (time.monotonic() - started)))

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._loop_once()
                except BaseException as exc:  # a bug here must not end the thread silently
                    self._failed(exc)
                    self._stop.wait(1.0)
        finally:
            if not self._stop.is_set():
                log.critical("stream poller for %s stopped unexpectedly", self.table_name)
            with self._cond:
                self._cond.notify_all()


def dlq_path(root: str | None = None) -> Path:
    base = Path(root) if root else Path(tempfile.mkdtemp(prefix="chatkeep-local-"))
    return base / "stream-dlq.jsonl"


__all__ = [
    "TTL_IDENTITY",
    "BatchDispatcher",
    "LocalDlq",
    "StreamPoller",
    "SweptKeys",
    "dlq_path",
    "to_lambda_record",
]
