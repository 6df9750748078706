"""The stream processor: coalesced per batch, exact under redelivery (docs/architecture.md, "The stream processor").

Powertools `BatchProcessor` (event type DynamoDBStreams) drives the invocation through
`process_partial_response`; `CoalescingBatchProcessor.process` replaces the per-record loop:

1. classify every record (the record handler: `records.classify`); a record that cannot be classified
   is a failure at its own position;
2. group the changes per session (`plan_batch`), in stream order: after a session REMOVE only the
   later records of that session stay live;
3. run the work, sessions in the order of their first record: cascades, then one conditional count
   update per session, then the index writes of every live session packed into BatchWriteItem calls
   of 25;
4. map failures back to records: the first record of every session whose work failed (and every
   unclassifiable record) is a candidate; the lowest sequence number among them is the cutoff, and
   that record and every later record of the batch are reported in `batchItemFailures` (Lambda
   retries from the lowest failed sequence number anyway; reporting the suffix says so explicitly).
   Every healthy session still runs in full, even one whose records all lie after the cutoff: if the
   failing session is a poison pill, Lambda eventually dead-letters the reported range, and a healthy
   session's records in it must already be counted and indexed by then (a later batch would move its
   watermark past them, so a DLQ replay could not add them back). On the retries the watermark turns
   this repeated work into a failed conditional write per session and idempotent index Puts.

Everything is idempotent under replay of the batch or of any suffix of it: counts through the
per-session watermark (repository/stream_store.py), index writes are Puts/Deletes of fixed keys, and
cascades delete what is left.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from chatkeep import text
from chatkeep.observability import count, logger
from chatkeep.repository.batch import UnwrittenItems
from chatkeep.repository.search_index import (
    CONTENT,
    TITLE,
    IndexEntry,
    SearchIndex,
    key_id,
    request_key,
)
from chatkeep.repository.stream_store import CountRecord, StreamStore, parse_starter_key
from chatkeep.stream.records import Change, ChangeKind, classify, truncate_content
from chatkeep.stream.turn_queue import TurnJob, TurnQueue

SessionKey = tuple[str, int]  # (workspace id, session id)


class SessionWorkFailed(Exception):
    """Marks a record reported because the work of its session failed."""


class AfterFailedRecord(Exception):
    """Marks a record reported only because it comes after a failed record (Lambda replays suffixes)."""


@dataclass(slots=True)
class SessionPlan:
    workspace_id: str
    session_id: int
    container_id: int | None
    first_sequence: int  # of the first record of this session that needs work
    remove: Change | None = None  # the last REMOVE of the batch, if any
    titles_before_remove: list[str | None] = field(default_factory=list)
    messages: list[Change] = field(default_factory=list)  # message INSERTs after the last REMOVE
    title_changes: list[Change] = field(default_factory=list)  # session INSERT/MODIFY after it
    turns: list[int] = field(default_factory=list)  # agent turns queued after it (ids, in stream order)
    finished_replies: list[Change] = field(default_factory=list)  # agent replies' final content after it

    @property
    def key(self) -> SessionKey:
        return (self.workspace_id, self.session_id)


def plan_batch(changes: list[Change]) -> list[SessionPlan]:
    """Group changes per session (input in stream order); sessions ordered by their first record."""
    plans: dict[SessionKey, SessionPlan] = {}
    for change in sorted(changes, key=lambda c: c.sequence_number):
        key = (change.workspace_id, change.session_id)
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = SessionPlan(
                change.workspace_id, change.session_id, change.container_id, change.sequence_number
            )
        if change.container_id is not None:
            plan.container_id = change.container_id
        if change.kind is ChangeKind.SESSION_REMOVE:
            # everything before it is moot; but its titles may have reached the index (replays)
            plan.titles_before_remove.extend(
                t for c in plan.title_changes for t in (c.old_title, c.new_title)
            )
            plan.titles_before_remove.append(change.old_title)
            plan.remove = change
            plan.messages.clear()
            plan.title_changes.clear()
            plan.turns.clear()
            plan.finished_replies.clear()
        elif change.kind is ChangeKind.MESSAGE_INSERT:
            plan.messages.append(change)
        elif change.kind is ChangeKind.REPLY_FINISHED:
            plan.finished_replies.append(change)
        elif change.kind is ChangeKind.TURN_QUEUED:
            plan.turns.append(change.turn_id or 0)
        else:
            plan.title_changes.append(change)
            if change.turn_id is not None:
                plan.turns.append(change.turn_id)
    return list(plans.values())  # inserted in stream order of each session's first record


def title_writes(plan: SessionPlan) -> tuple[list[IndexEntry], list[IndexEntry]]:
    """(puts, deletes) of title words for the live title changes of a session.

    Puts every word of the final title (not only the new ones) and deletes the words of every title
    seen in the batch that the final title lacks: under replays of suffixes an intermediate title may
    already be in the index, and a word deleted by an earlier partial run may have to come back."""
    if not plan.title_changes or plan.container_id is None:
        return [], []
    ws, cid, sid = plan.workspace_id, plan.container_id, plan.session_id
    puts = word_entries(ws, cid, sid, [plan.title_changes[-1].new_title], TITLE)
    seen = word_entries(ws, cid, sid, [t for c in plan.title_changes for t in (c.old_title, c.new_title)], TITLE)
    final = set(puts)
    return puts, [e for e in seen if e not in final]


def word_entries(
    workspace_id: str, container_id: int, session_id: int, texts: list[str | None], field: str,
    words_per_text: int | None = None,
) -> list[IndexEntry]:
    """One entry per distinct word of `texts` (the first `words_per_text` distinct words of each), in first-seen
    order."""
    words = dict.fromkeys(w for t in texts for w in text.words(t, words_per_text))
    return [IndexEntry(workspace_id, container_id, session_id, w, field) for w in words]


def content_entries(
    workspace_id: str, container_id: int, session_id: int, contents: list[str | None]
) -> list[IndexEntry]:
    """The entries of messages: each message's first MAX_INDEXED_WORDS distinct words, from its first 32 KB. The
    cascade derives the entries to delete the same way (entries an older rule wrote beyond these are swept from
    the by_session index)."""
    return word_entries(workspace_id, container_id, session_id, [truncate_content(c) for c in contents], CONTENT,
                        text.MAX_INDEXED_WORDS)


@dataclass(slots=True)
class BatchStats:
    records: int = 0
    changes: int = 0
    sessions: int = 0
    messages_counted: int = 0
    index_puts: int = 0
    index_deletes: int = 0
    cascades: int = 0
    ttl_cascades: int = 0
    failed_sessions: int = 0
    reported: int = 0
    turns_queued: int = 0
    live_events: int = 0  # live updates of the records processed (chatkeep.realtime), and what their fan-out did
    live_pushes: int = 0
    live_gone: int = 0
    live_failed: int = 0


class CoalescingBatchProcessor(BatchProcessor):
    """A Powertools BatchProcessor whose `process()` coalesces the work of the batch per session."""

    def __init__(self, store: StreamStore | None = None, index: SearchIndex | None = None) -> None:
        super().__init__(event_type=EventType.DynamoDBStreams)
        self._store = store
        self._index = index
        self._turn_queue: TurnQueue | None = None
        self.stats = BatchStats()

    @property
    def store(self) -> StreamStore:
        if self._store is None:
            self._store = StreamStore()
        return self._store

    @property
    def turn_queue(self) -> TurnQueue:
        if self._turn_queue is None:
            self._turn_queue = TurnQueue()
        return self._turn_queue

    @property
    def index(self) -> SearchIndex:
        if self._index is None:
            self._index = SearchIndex()
        return self._index

    # ------------------------------------------------------------------ the batch

    def process(self) -> list[tuple]:
        """Powertools' contract for process(): called once per batch inside `with processor(records, handler)`;
        every record goes to success_handler or failure_handler (which build the partial batch response)."""
        self.stats = BatchStats()
        records = [DynamoDBRecord(r) for r in self.records]
        sequence = [_sequence_number(r) for r in records]
        self.stats.records = len(records)

        causes: dict[int, BaseException] = {}  # sequence number -> why it is reported
        changes: list[Change] = []
        for position, record in enumerate(records):
            try:
                change = self.handler(record=record)
            except Exception as exc:
                logger.warning("unclassifiable stream record", extra={"sequence_number": sequence[position]})
                causes[sequence[position]] = exc
                continue
            if change is not None:
                changes.append(change)
        self.stats.changes = len(changes)

        plans = plan_batch(changes)
        self.stats.sessions = len(plans)
        failed = self._run(plans, causes)
        cutoff = min(causes, default=None)  # lowest sequence number that must be reported
        self.stats.failed_sessions = len(failed)

        results: list[tuple] = []
        for position, record in enumerate(records):
            seq = sequence[position]
            if cutoff is None or seq < cutoff:
                results.append(self.success_handler(record=record, result=None))
                continue
            cause = causes.get(seq) or AfterFailedRecord(f"after failed record {cutoff}")
            results.append(self.failure_handler(record=record, exception=(type(cause), cause, cause.__traceback__)))
        self.stats.reported = len(self.fail_messages)
        # Live updates of the records reported processed only: the others come again, and publish then.
        self._publish([r for r, seq in zip(self.records, sequence, strict=True) if cutoff is None or seq < cutoff])
        return results

    def _publish(self, records: list[dict[str, Any]]) -> None:
        """Live updates of what these records changed (chatkeep.realtime.publisher.publish_records: never fails the
        batch, counted here)."""
        from chatkeep.settings import get_settings

        if not records or not get_settings().live_updates:
            return
        from chatkeep.realtime.publisher import publish_records

        done = publish_records(records)
        self.stats.live_events += done.events
        self.stats.live_pushes += done.pushes
        self.stats.live_gone += done.gone
        self.stats.live_failed += done.failed

    def _run(
        self, plans: list[SessionPlan], causes: dict[int, BaseException]
    ) -> list[SessionPlan]:
        failed: list[SessionPlan] = []
        failed_keys: set[SessionKey] = set()

        def fail(plan: SessionPlan, exc: BaseException) -> None:
            logger.warning(
                "session work failed; reporting from its first record",
                extra={
                    "workspace_id": plan.workspace_id,
                    "session_id": plan.session_id,
                    "sequence_number": plan.first_sequence,
                    "error": type(exc).__name__,
                },
            )
            failed.append(plan)
            failed_keys.add(plan.key)
            causes.setdefault(plan.first_sequence, exc)

        def in_play(plan: SessionPlan) -> bool:
            # Not limited to sessions before the cutoff: see the module docstring (poison pills, DLQ).
            return plan.key not in failed_keys

        # 1) cascades and counts, session by session
        for plan in plans:
            if not in_play(plan):
                continue
            try:
                if plan.remove is not None:
                    self._cascade(plan)
                if plan.messages:
                    result = self.store.apply_message_counts(
                        plan.workspace_id,
                        plan.session_id,
                        [CountRecord(c.sequence_number, c.created_at or "") for c in plan.messages],
                    )
                    self.stats.messages_counted += result.counted
            except Exception as exc:
                fail(plan, exc)

        # 2) index writes of every live session, packed 25 per BatchWriteItem
        puts: list[IndexEntry] = []
        deletes: list[IndexEntry] = []
        owner: dict[tuple[str, str], SessionPlan] = {}
        for plan in plans:
            if not in_play(plan):
                continue
            session_puts, session_deletes = title_writes(plan)
            contents = [c.content for c in (*plan.messages, *plan.finished_replies)]
            if contents and plan.container_id is not None:
                session_puts += content_entries(plan.workspace_id, plan.container_id, plan.session_id, contents)
            for entry in (*session_puts, *session_deletes):
                owner[key_id(entry.key())] = plan
            puts += session_puts
            deletes += session_deletes
        if puts or deletes:
            try:
                self.index.write(puts=puts, deletes=deletes)
                self.stats.index_puts += len(puts)
                self.stats.index_deletes += len(deletes)
            except UnwrittenItems as exc:
                unwritten = {owner[request_key(r)].key for r in exc.requests if request_key(r) in owner}
                for plan in plans:
                    if plan.key in unwritten and plan.key not in failed_keys:
                        fail(plan, exc)

        # 3) agent turns to the turn queue (the worker ignores a turn that is not queued any more, so a
        # replayed batch that sends a turn twice costs a message, never a second reply)
        jobs = [TurnJob(workspace_id=plan.workspace_id, session_id=plan.session_id, turn_id=turn_id)
                for plan in plans if in_play(plan) for turn_id in plan.turns]
        if jobs:
            by_key = {plan.key: plan for plan in plans}
            unsent = self.turn_queue.send(jobs)
            for job, error in unsent:
                plan = by_key[(job.workspace_id, job.session_id)]
                if plan.key not in failed_keys:
                    fail(plan, error)
            self.stats.turns_queued += len(jobs) - len(unsent)
        return failed

    def _cascade(self, plan: SessionPlan) -> None:
        """Delete what names a removed session: its index entries (derived from its messages and titles,
        then whatever the by_session GSI still shows), its messages and message id claims, and its
        starter pointer if that still points to it."""
        remove = plan.remove
        assert remove is not None
        ws, sid = plan.workspace_id, plan.session_id
        cid = remove.container_id if remove.container_id is not None else plan.container_id
        deleted: set[tuple[str, str]] = set()
        # Index entries first, derived from what is still there (strongly consistent reads): the GSI
        # may lag behind entries written moments ago. Messages go after their entries, so a retry
        # still finds the words of every message left.
        for page in self.store.iter_message_pages(ws, sid):
            entries: list[IndexEntry] = []
            for ref in page:
                entry_cid = ref.container_id if ref.container_id is not None else cid
                if entry_cid is None:
                    continue
                entries += content_entries(ws, entry_cid, sid, [ref.content])
            entries = [e for e in entries if key_id(e.key()) not in deleted]
            self.index.write(deletes=entries)
            deleted.update(key_id(e.key()) for e in entries)
            self.store.delete_messages(ws, page)
        if cid is not None:
            # plan_batch already appended remove.old_title to titles_before_remove
            title_entries = {key_id(e.key()): e for e in word_entries(ws, cid, sid, plan.titles_before_remove, TITLE)}
            fresh = [e for k, e in title_entries.items() if k not in deleted]
            self.index.write(deletes=fresh)
            deleted.update(title_entries)
        swept = self.index.delete_session_entries(ws, sid, already_deleted=deleted)
        self.stats.index_deletes += len(deleted) + swept
        pointer = parse_starter_key(remove.starter_key, ws, remove.owner)
        if pointer is not None:
            self.store.delete_starter_pointer(pointer, sid)
        self.stats.cascades += 1
        if remove.ttl_delete:
            self.stats.ttl_cascades += 1


def _sequence_number(record: DynamoDBRecord) -> int:
    stream = record.dynamodb
    if stream is None or stream.sequence_number is None:
        raise ValueError("a stream record without a sequence number")
    return int(stream.sequence_number)


def record_handler(record: DynamoDBRecord) -> Change | None:
    """The per-record step of the Powertools contract: classification only (the work is coalesced)."""
    return classify(record.raw_event)


# ---------------------------------------------------------------------- entry point

_processor: CoalescingBatchProcessor | None = None


def get_processor() -> CoalescingBatchProcessor:
    global _processor
    if _processor is None:
        _processor = CoalescingBatchProcessor()
    return _processor


def reset() -> None:
    """Forget the cached processor (it holds the tables it was built for): tests and the local runtime swap
    clients and tables."""
    global _processor
    _processor = None


def handle(
    event: dict[str, Any], context: Any = None, processor: CoalescingBatchProcessor | None = None
) -> PartialItemFailureResponse:
    """Process one Lambda DynamoDB Streams event; returns the partial batch response."""
    proc = processor or get_processor()
    started = time.perf_counter()
    try:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=proc, context=context
        )
    finally:
        stats = proc.stats
        logger.info(
            "stream batch",
            extra={
                "records": stats.records,
                "sessions": stats.sessions,
                "messages_counted": stats.messages_counted,
                "index_puts": stats.index_puts,
                "index_deletes": stats.index_deletes,
                "cascades": stats.cascades,
                "ttl_cascades": stats.ttl_cascades,
                "failed_sessions": stats.failed_sessions,
                "turns_queued": stats.turns_queued,
                "reported": stats.reported,
                "live_events": stats.live_events,
                "live_pushes": stats.live_pushes,
                "live_gone": stats.live_gone,
                "live_failed": stats.live_failed,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        _emit_metrics(stats)


def _emit_metrics(stats: BatchStats) -> None:
    """EMF metrics, flushed by the handler (`@metrics.log_metrics`). Never fails the batch."""
    try:
        count("StreamRecordsProcessed", stats.records)
        count("StreamSessionsTouched", stats.sessions)
        count("StreamIndexWrites", stats.index_puts + stats.index_deletes)
        count("StreamMessagesCounted", stats.messages_counted)
        count("StreamCascades", stats.cascades)
        count("StreamRecordsReported", stats.reported)
        if stats.turns_queued:
            count("TurnsStarted", stats.turns_queued)
        if stats.live_events:
            count("LiveEventsPublished", stats.live_events)
            count("LivePushes", stats.live_pushes)
            count("LivePushesFailed", stats.live_failed)
            count("LiveConnectionsGone", stats.live_gone)
    except Exception:  # noqa: BLE001 - metrics are best effort
        logger.debug("metrics not recorded", exc_info=sys.exc_info())
