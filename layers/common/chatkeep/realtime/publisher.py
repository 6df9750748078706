"""Fan-out: live events to the subscribers of their topics.

Per call: one Query of the GSI by_topic per distinct topic (in parallel), one execution of each distinct subscription
document per event (subscribers sharing a document share its payload), then the pushes: in order per connection
(a connection's messages are posted one after the other), connections in parallel. Work grows with the subscribers of
the topics concerned, never with all connections.

Failures stay here: a connection that is gone (GoneException) is forgotten (its record and subscriptions), a push
that fails otherwise is counted and dropped, a subscriber whose token expired is disconnected (graphql-ws clients
reconnect with a fresh token and subscribe again), and nothing raises to the caller: a dead connection never fails
or retries a stream batch or an agent turn.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

from chatkeep import clock
from chatkeep.models import Subscription
from chatkeep.observability import logger
from chatkeep.realtime import protocol
from chatkeep.realtime.events import LiveEvent
from chatkeep.realtime.push import Pushed, Pusher
from chatkeep.repository.connections import ConnectionStore
from chatkeep.settings import Settings, get_settings

MAX_WORKERS = 16


@dataclass(slots=True)
class Delivery:
    """What a publish did (logged, counted in the stream processor's batch stats, asserted by tests)."""

    events: int = 0
    topics: int = 0  # subscriber Queries
    subscribers: int = 0  # (event, subscription) pairs that matched
    shaped: int = 0  # document executions
    pushes: int = 0  # messages posted
    gone: int = 0  # connections found gone, and forgotten
    failed: int = 0  # pushes lost to another error (or events a document could not shape)
    expired: int = 0  # connections whose token expired, disconnected
    hidden: int = 0  # (event, subscription) pairs left out: not the subscriber's to see

    def add(self, other: Delivery) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="live-push")
        return _executor


def _each[T, R](function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    if len(items) <= 1:
        return [function(item) for item in items]
    return list(_pool().map(function, items))


def _document_key(s: Subscription) -> tuple[str, str, str | None]:
    return (s.query, json.dumps(s.variables, sort_keys=True, default=str), s.operation_name)


class Publisher:
    def __init__(self, store: ConnectionStore | None = None, pusher: Pusher | None = None,
                 settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = store or ConnectionStore(self.settings)
        self.pusher = pusher or Pusher(self.settings)

    def subscribers(self, topic: str) -> list[Subscription]:
        return self.store.subscribers(topic, now=clock.now())

    def publish(self, events: Iterable[LiveEvent],
                subscribers: dict[str, list[Subscription]] | None = None) -> Delivery:
        """Deliver `events` in order. `subscribers`: already known subscribers by topic (the turn worker keeps
        them for a reply's chunks); the other topics are read."""
        events = list(events)
        done = Delivery(events=len(events))
        if not events:
            return done
        known = dict(subscribers or {})
        missing = list(dict.fromkeys(e.topic for e in events if e.topic not in known))
        for topic_, found in zip(missing, _each(self.subscribers, missing), strict=True):
            known[topic_] = found
        done.topics = len(missing)
        outbox, completions, expired = self._shape(events, known, done)
        for connection_id in expired:
            self.pusher.disconnect(connection_id)
            self.store.forget(connection_id)
        results = _each(self._deliver, list(outbox.items()))
        gone = set()
        for connection_id, pushed, failed, was_gone in results:
            done.pushes += pushed
            done.failed += failed
            if was_gone:
                gone.add(connection_id)
        done.gone = len(gone)
        for connection_id, operation in completions:
            if connection_id not in gone:
                self.store.remove_subscription(connection_id, operation)
        return done

    def _shape(self, events: list[LiveEvent], known: dict[str, list[Subscription]],
               done: Delivery) -> tuple[dict[str, list[bytes]], list[tuple[str, str]], set[str]]:
        # Imported here: GraphQL (ariadne, the schema) is for events someone follows.
        from chatkeep.graphql.server import Refused
        from chatkeep.realtime import shaping
        from chatkeep.realtime.subscriptions import document

        now = clock.now()
        outbox: dict[str, list[bytes]] = {}
        completions: list[tuple[str, str]] = []
        expired: set[str] = set()
        for event in events:
            groups: dict[tuple[str, str, str | None], list[Subscription]] = {}
            for s in known.get(event.topic, []):
                if s.token_expires_at <= now:
                    expired.add(s.connection_id)
                elif event.owner is not None and not s.is_service and s.sub != event.owner:
                    done.hidden += 1
                elif s.connection_id not in expired:
                    groups.setdefault(_document_key(s), []).append(s)
            for members in groups.values():
                first = members[0]
                try:
                    shaped = shaping.payload(event, document(first.query), first.variables, first.operation_name)
                except Refused:  # no longer valid (the schema changed under a live subscription)
                    done.failed += 1
                    continue
                done.shaped += 1
                done.subscribers += len(members)
                for s in members:
                    box = outbox.setdefault(s.connection_id, [])
                    box.append(shaping.next_message(s.id, shaped))
                    if event.completes:
                        box.append(protocol.complete(s.id))
                        completions.append((s.connection_id, s.id))
        done.expired = len(expired)
        return outbox, completions, expired

    def _deliver(self, item: tuple[str, list[bytes]]) -> tuple[str, int, int, bool]:
        """A connection's messages, in order; stops at GoneException and forgets the connection."""
        connection_id, messages = item
        pushed = failed = 0
        for data in messages:
            outcome = self.pusher.post(connection_id, data)
            if outcome is Pushed.GONE:
                try:
                    self.store.forget(connection_id)
                except Exception:  # noqa: BLE001 - its records expire anyway
                    logger.warning("gone connection not forgotten", extra={"connection_id": connection_id})
                return connection_id, pushed, failed, True
            if outcome is Pushed.OK:
                pushed += 1
            else:
                failed += 1
        return connection_id, pushed, failed, False


def publish_records(records: Iterable[dict[str, Any]]) -> Delivery:
    """The stream processor's live updates: the events of these chat table stream records (chatkeep.realtime.events)
    to their subscribers. Never raises: a record whose events cannot be read, a dead connection or a failed push is
    logged and counted (`failed`), not retried (docs/live-updates.md, "Delivery")."""
    from chatkeep.realtime.events import of_record

    try:
        events = []
        for record in records:
            try:
                events += of_record(record)
            except Exception:  # noqa: BLE001 - an unreadable image: no event for it
                logger.warning("no live event for a stream record", exc_info=True)
        publisher = default_publisher()
        if not events or publisher is None:
            return Delivery()
        return publisher.publish(events)
    except Exception:  # noqa: BLE001 - e.g. the connections table throttled: these updates are lost
        logger.exception("live updates not published")
        return Delivery(failed=1)


_publisher: Publisher | None = None


def default_publisher() -> Publisher | None:
    """The publisher of this function, or None when it has no connections table or @connections endpoint."""
    global _publisher
    if _publisher is None and get_settings().live_updates:
        _publisher = Publisher()
    return _publisher


def reset() -> None:
    """Forget the publisher (it holds the settings, table and client it was built with)."""
    global _publisher
    _publisher = None


__all__ = ["Delivery", "Publisher", "default_publisher", "publish_records", "reset"]
