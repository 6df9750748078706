"""An agent reply's chunks, pushed by the turn worker straight to the session's subscribers (DESIGN section 9: not
through a table write per token).

The model's thread only calls `grew()` (a lock, a string append); a pusher thread sends what accumulated as one
REPLY_CHUNK event, the first at once and then at most every `interval` (100 ms), or as soon as the pending text
reaches MAX_PENDING_CHARS (so a delta is never large). The session's subscribers are read when the first chunk goes
and again every `refresh` seconds (a client may subscribe mid-reply). `flush()` waits until everything pending is
pushed: the worker calls it before it writes the reply's end, whose REPLY_COMPLETED comes through the stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from chatkeep.models import Message, Subscription
from chatkeep.observability import logger
from chatkeep.realtime.events import SESSION, reply_chunk, topic
from chatkeep.realtime.publisher import Delivery, Publisher

INTERVAL_SECONDS = 0.1
REFRESH_SECONDS = 2.0
MAX_PENDING_CHARS = 8 * 1024


class ReplyStream:
    def __init__(self, publisher: Publisher, workspace_id: str, session_id: int, *,
                 interval: float = INTERVAL_SECONDS, refresh: float = REFRESH_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.publisher = publisher
        self.topic = topic(SESSION, workspace_id, session_id)
        self.interval, self.refresh, self._now = interval, refresh, monotonic
        self._cond = threading.Condition()
        self._reply: Message | None = None
        self._text = ""
        self._pending = ""
        self._busy = False
        self._closed = False
        self._last_push = float("-inf")
        self._subscribers: list[Subscription] | None = None
        self._read_at = float("-inf")
        self.delivery = Delivery()
        self.chunks = 0
        self._thread = threading.Thread(target=self._run, name="reply-stream", daemon=True)
        self._thread.start()

    def grew(self, reply: Message, text: str, delta: str) -> None:
        """The reply is now `text`, `delta` being new (called on the model's thread: no I/O here)."""
        with self._cond:
            if len(text) - len(delta) < len(self._text):  # the reply restarted (a worker took the turn over)
                self._pending = ""
            self._reply, self._text = reply, text
            self._pending += delta
            self._cond.notify()

    def flush(self, timeout: float = 5.0) -> None:
        """Push what is pending now, and wait for it (bounded: a stuck push never holds the turn)."""
        deadline = self._now() + timeout
        with self._cond:
            self._last_push = float("-inf")
            self._cond.notify()
            while (self._pending or self._busy) and not self._closed:
                left = deadline - self._now()
                if left <= 0:
                    logger.warning("reply chunks not flushed in time", extra={"topic": self.topic})
                    return
                self._cond.wait(left)

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._pending:
                    self._cond.wait()
                if self._closed:
                    return
                wait = self._last_push + self.interval - self._now()
                if wait > 0 and len(self._pending) < MAX_PENDING_CHARS:
                    self._cond.wait(wait)
                    continue
                reply, text, delta = self._reply, self._text, self._pending
                self._pending, self._busy, self._last_push = "", True, self._now()
            try:
                if reply is not None and delta:
                    self._push(reply, text, delta)
            except Exception:  # noqa: BLE001 - a chunk that cannot be pushed is lost, the turn goes on
                logger.warning("reply chunk not pushed", exc_info=True)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _push(self, reply: Message, text: str, delta: str) -> None:
        if self._subscribers is None or self._now() - self._read_at >= self.refresh:
            self._subscribers = self.publisher.subscribers(self.topic)
            self._read_at = self._now()
            self.delivery.topics += 1
        if not self._subscribers:
            return
        event = reply_chunk(reply, text, delta, offset=len(text) - len(delta))
        done = self.publisher.publish([event], {self.topic: self._subscribers})
        self.delivery.add(done)
        self.chunks += 1
        if done.gone or done.expired:  # some subscribers left: read them again next time
            self._read_at = float("-inf")


def reply_streams(publisher: Publisher | None) -> Callable[[Any], ReplyStream | None]:
    """The turn runner's factory: one ReplyStream per turn (none when this function cannot push)."""

    def start(claim: Any) -> ReplyStream | None:
        if publisher is None:
            return None
        return ReplyStream(publisher, claim.workspace_id, claim.session_id)

    return start


__all__ = ["INTERVAL_SECONDS", "MAX_PENDING_CHARS", "REFRESH_SECONDS", "ReplyStream", "reply_streams"]
