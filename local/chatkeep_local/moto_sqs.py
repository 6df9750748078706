"""Make moto's SQS behave like SQS where the local runtime depends on it (moto 5.2).

What moto already does as SQS does (checked, and relied on): the visibility timeout (a received message is
hidden for the queue's VisibilityTimeout, or the one the receive asks for, then comes back); the
ApproximateReceiveCount / ApproximateFirstReceiveTimestamp / SentTimestamp / SenderId attributes; redrive
(a message already received maxReceiveCount times is moved to the RedrivePolicy's dead-letter queue by the
next receive that would have returned it, keeping its id, body and attributes); long polling that returns
as soon as a message is sent; queue URLs resolved by their last path segment (so the AWS-shaped URL that
`!Ref Queue` gives works against it).

What it does not, and `install()` fixes:
- thread safety: moto's backend takes no lock. DeleteMessage rebuilds the queue's message list, so a
  SendMessage landing meanwhile is lost, and two concurrent receives can both take one message. Here every
  backend call that reads or changes messages is serialised by one lock (the long-poll wait is not: it
  waits outside it, so senders are never held up by a waiting receiver);
- prompt redelivery: moto's long poll re-checks the queue once a second when nothing is sent, so a message
  whose visibility timeout ran out came back up to a second late. Here the wait ends when the earliest
  hidden or delayed message becomes visible;
- MessageRetentionPeriod: moto hides a message past its retention period (and still counts it as received,
  so redrive can move it) instead of deleting it. Here it is deleted before each receive, as SQS does.

Not emulated: the DeadLetterQueueSourceArn attribute of messages moved to a dead-letter queue, and the
receive count restarting there (moto carries it over); FIFO queues only as far as moto models them.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from chatkeep_local.moto_dynamodb import serialised

_LOCK = threading.RLock()
_installed = False
_MAX_WAIT_STEP_S = 1.0  # re-check at least this often (anything that changes visibility without a notify)
_SERIALISED = (
    "create_queue", "delete_queue", "get_queue_attributes", "set_queue_attributes", "send_message",
    "send_message_batch", "delete_message", "delete_message_batch", "change_message_visibility",
    "change_message_visibility_batch", "purge_queue",
)


def install() -> None:
    """Patch moto's SQS backend (idempotent; the embedded moto server shares the process's backends)."""
    global _installed
    if _installed:
        return
    from moto.sqs.models import SQSBackend

    for name in _SERIALISED:
        setattr(SQSBackend, name, serialised(getattr(SQSBackend, name), _LOCK))
    SQSBackend.receive_message = _long_poll(SQSBackend.receive_message)  # type: ignore[method-assign]
    _installed = True


def _long_poll(receive: Any) -> Any:
    """ReceiveMessage: one pass of moto's receive under the lock (wait 0); if it found nothing, wait (lock
    released) for a send or for the next message to become visible, and try again until WaitTimeSeconds."""

    @functools.wraps(receive)
    def wrapper(self: Any, queue_name: str, count: int, wait_seconds_timeout: int, visibility_timeout: int,
                message_attribute_names: list[str] | None = None) -> list[Any]:
        deadline = time.monotonic() + int(wait_seconds_timeout or 0)
        while True:
            with _LOCK:
                queue = self.get_queue(queue_name)
                _drop_expired(queue)
                result = receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
                remaining = deadline - time.monotonic()
                if result or remaining <= 0:
                    return result
                # Take the queue's condition before letting senders in: a send after this point notifies us.
                cond = queue._messages_lock
                cond.acquire()
            try:
                cond.wait(min(remaining, _until_next_visible(queue), _MAX_WAIT_STEP_S))
            finally:
                cond.release()

    return wrapper


def _until_next_visible(queue: Any) -> float:
    """Seconds until the earliest hidden (in flight) or delayed message becomes receivable."""
    now_ms = time.time() * 1000
    pending = [max(m.visible_at, m.delayed_until) for m in queue._messages]
    future = [t for t in pending if t > now_ms]
    return max(0.001, (min(future) - now_ms) / 1000 + 0.001) if future else _MAX_WAIT_STEP_S


def _drop_expired(queue: Any) -> None:
    """Delete the messages older than the queue's MessageRetentionPeriod (SQS deletes them; moto hides them)."""
    retention_ms = int(queue.message_retention_period) * 1000
    now_ms = time.time() * 1000
    expired = [m for m in queue._messages if m.sent_timestamp and m.sent_timestamp + retention_ms <= now_ms]
    if expired:
        gone = set(map(id, expired))
        queue._messages = [m for m in queue._messages if id(m) not in gone]
        for message in expired:
            queue.pending_messages.discard(message)
