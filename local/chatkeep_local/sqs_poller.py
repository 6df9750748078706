"""The SQS -> Lambda event source mapping, emulated.

A poller thread per `Type: SQS` event long-polls the queue (ReceiveMessage, at most 10 at a time, as
Lambda's pollers do) until it has BatchSize messages or MaximumBatchingWindowInSeconds has passed since the
first one (to within a second: WaitTimeSeconds is whole seconds), or the batch reaches Lambda's 6 MB
payload limit. It turns them into the event Lambda delivers
(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html) and invokes the function in a thread of its
own, so up to `SqsSource.concurrency` batches (ScalingConfig.MaximumConcurrency, the function's reserved
concurrency, else a local default of 5) run at once and a long invocation never holds up the poller or
the API. It receives only when a slot is free, so no message waits hidden behind a busy function.

What happens to the batch is what Lambda does:
- the function returned: every message is deleted; with ReportBatchItemFailures, all but those named in
  `{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}`. An empty or null list, an empty or null
  response, or one that is not an object is a success; a batchItemFailures that is not a list, or an item
  whose itemIdentifier is missing, empty or not a message of the batch, fails the whole batch (a malformed
  response);
- the function raised (a function error), returned something that is not JSON, or ran past its Timeout
  (Lambda would have stopped it; locally it runs to the end and is then counted as timed out): nothing is
  deleted;
- what is not deleted is left alone: SQS makes it visible again when the queue's VisibilityTimeout runs
  out, and after maxReceiveCount receives SQS's redrive moves it to the dead-letter queue (moto does both;
  see moto_sqs for what is patched).

Not emulated: Lambda scaling its pollers up and down (and backing off after function errors), event
filtering (FilterCriteria), and the mapping's CloudWatch metrics; the counters below stand in for them.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chatkeep_local.template import REGION

log = logging.getLogger("chatkeep_local.sqs")
request_log = logging.getLogger("chatkeep_local.http")  # one line per invocation, as for requests and streams

PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024  # synchronous invocation payload
RECEIVE_MAX = 10  # ReceiveMessage MaxNumberOfMessages
LONG_POLL_S = 20  # Lambda's pollers use 20 s long polling
_ATTRIBUTE_ORDER = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")


# ------------------------------------------------------------------------------------------ records


def _b64(value: bytes | str) -> str:
    return base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode()


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A ReceiveMessage MessageAttributeValue (boto3 shape) -> its shape in a Lambda SQS record."""
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = _b64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues") or [])
    out["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues") or []]
    out["dataType"] = value["DataType"]
    return out


def to_lambda_record(message: dict[str, Any], *, queue_arn: str, region: str = REGION) -> dict[str, Any]:
    """A ReceiveMessage message (boto3 shape, all attributes requested) -> the record in `event["Records"]`."""
    attrs = message.get("Attributes") or {}
    attributes = {k: attrs[k] for k in _ATTRIBUTE_ORDER if k in attrs}
    attributes.update({k: v for k, v in attrs.items() if k not in attributes})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {
            name: _message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def failed_message_ids(response: Any, message_ids: list[str]) -> set[str] | None:
    """The messages a ReportBatchItemFailures response names as failed; None if the response is malformed
    (the whole batch failed)."""
    if not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list | tuple):  # a tuple is sent as a JSON array
        return None
    known = set(message_ids)
    failed = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in known:
            return None
        failed.add(ident)
    return failed


# ------------------------------------------------------------------------------------------- poller


@dataclass
class SqsStats:
    receives: int = 0
    messages_received: int = 0
    invocations: int = 0
    messages_deleted: int = 0
    messages_failed: int = 0  # left in the queue to come back after the visibility timeout
    messages_to_dlq: int = 0  # failed their last allowed receive: redrive moves them on the next one
    function_errors: int = 0
    timeouts: int = 0
    partial_failures: int = 0
    malformed_responses: int = 0
    delete_errors: int = 0
    in_flight: int = 0
    peak_concurrency: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class SqsPoller(threading.Thread):
    """Feeds one queue to one function as the SQS event source mapping does (see the module docstring).

    `invoke(event)` calls the function (the local runtime's FunctionInvoker.invoke): it returns the
    function's response or raises (a function error)."""

    def __init__(
        self,
        client: Any,
        *,
        function: str,
        queue_url: str,
        queue_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        batch_size: int = 10,
        max_batching_window_s: int = 0,
        report_batch_item_failures: bool = False,
        concurrency: int = 5,
        function_timeout_s: float | None = 3.0,  # None: the invoker stops a function at its Timeout itself
        on_event: Callable[[dict[str, Any]], None] | None = None,
        long_poll_s: int = LONG_POLL_S,
        max_receive_count: int | None = None,
        dead_letter_queue: str | None = None,
    ):
        super().__init__(name=f"sqs-poller-{function}", daemon=True)
        self.client = client
        self.function = function
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.queue_name = queue_url.rsplit("/", 1)[-1]
        self.invoke = invoke
        self.batch_size = batch_size
        self.max_batching_window_s = max_batching_window_s
        self.report_batch_item_failures = report_batch_item_failures
        self.concurrency = concurrency
        self.function_timeout_s = function_timeout_s
        self.on_event = on_event
        self.long_poll_s = long_poll_s
        self.max_receive_count = max_receive_count  # the queue's RedrivePolicy, to say when a message is lost
        self.dead_letter_queue = dead_letter_queue
        self.stats = SqsStats()
        self.error: str | None = None  # the error of the last receive, None once one succeeds
        self.last_error: dict[str, Any] | None = None  # the most recent error, kept: {error, at, count}
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- control
    def stop(self) -> None:
        """Stop receiving (a receive under way ends within `long_poll_s`; running invocations finish)."""
        self._stop.set()

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return self.stats.as_dict()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self.stats.in_flight > 0

    # -- receiving
    def _receive(self, limit: int, wait_s: int) -> list[dict[str, Any]]:
        resp = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(RECEIVE_MAX, limit),
            WaitTimeSeconds=min(LONG_POLL_S, max(0, wait_s)),
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages") or []
        with self._lock:
            self.stats.receives += 1
            self.stats.messages_received += len(messages)
        return messages

    def _gather(self) -> list[dict[str, Any]]:
        """One batch: long-poll for a first message, then fill up to BatchSize within the batching window."""
        batch: list[dict[str, Any]] = []
        size = 0
        window_ends: float | None = None
        while len(batch) < self.batch_size and not self._stop.is_set():
            if window_ends is None:
                wait = self.long_poll_s
            else:
                remaining = window_ends - time.monotonic()
                if remaining <= 0:
                    break
                wait = int(remaining) + 1  # whole seconds: at most a second past the window
            messages = self._receive(self.batch_size - len(batch), wait)
            if not messages:
                if window_ends is None:
                    return batch  # nothing within the long poll: the caller checks stop() and polls again
                continue
            batch.extend(messages)
            size += sum(len(m.get("Body", "").encode()) for m in messages)
            if self.max_batching_window_s <= 0 or size >= PAYLOAD_LIMIT_BYTES:
                break
            if window_ends is None:
                window_ends = time.monotonic() + self.max_batching_window_s
        return batch

    # -- delivering
    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        """Runs in its own thread: invoke the function with the batch, then delete what succeeded."""
        try:
            failed = self._invoke(messages)
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                self._delete_messages(done)
            with self._lock:
                self.stats.messages_failed += len(failed)
            self._note_last_attempts([m for m in messages if m["MessageId"] in failed])
        except Exception:  # the emulator's own failure (a delete): the messages come back, as after an error
            log.exception("%s: delivering a batch from %s failed", self.function, self.queue_name)
        finally:
            with self._lock:
                self.stats.in_flight -= 1
            self._slots.release()

    def _invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        """Invoke once; return the ids of the messages to leave in the queue."""
        ids = [m["MessageId"] for m in messages]
        event = {"Records": [to_lambda_record(m, queue_arn=self.queue_arn) for m in messages]}
        if self.on_event:
            self.on_event(event)
        with self._lock:
            self.stats.invocations += 1
        started = time.monotonic()
        outcome = "ok"
        failed: set[str] = set()
        try:
            response = self.invoke(event)
            json.dumps(response)  # what Lambda could not serialise is a function error (Runtime.MarshalError)
        except (Exception, SystemExit):  # Lambda reports sys.exit() in a handler as a function error
            log.exception("%s: function error on a batch of %d from %s", self.function, len(ids), self.queue_name)
            outcome, failed = "function error", set(ids)
            with self._lock:
                self.stats.function_errors += 1
        else:
            if self.report_batch_item_failures:
                named = failed_message_ids(response, ids)
                if named is None:
                    log.warning("%s: malformed batchItemFailures %r: the whole batch failed",
                                self.function, response.get("batchItemFailures"))
                    outcome, failed = "malformed response", set(ids)
                    with self._lock:
                        self.stats.malformed_responses += 1
                elif named:
                    outcome, failed = f"{len(named)} failed", named
                    with self._lock:
                        self.stats.partial_failures += 1
        elapsed = time.monotonic() - started
        # Only when the invoker cannot stop the function (--inline): an environment's own timeout is a function
        # error above, and `elapsed` here also counts a wait for a free environment.
        if self.function_timeout_s is not None and elapsed > self.function_timeout_s:
            log.warning("%s: ran %.1fs, past its Timeout of %ss: Lambda would have stopped it (a function "
                        "error), so its batch is not deleted", self.function, elapsed, self.function_timeout_s)
            outcome, failed = "timed out", set(ids)
            with self._lock:
                self.stats.timeouts += 1
        request_log.info("SQS %s %d message(s) %.1fms %s %s", self.queue_name, len(ids), elapsed * 1000,
                         self.function, outcome)
        return failed

    def _note_last_attempts(self, failed: list[dict[str, Any]]) -> None:
        if not self.max_receive_count:
            return
        last = [m for m in failed
                if int((m.get("Attributes") or {}).get("ApproximateReceiveCount", 0)) >= self.max_receive_count]
        for message in last:
            log.warning("%s: message %s failed its receive %s of maxReceiveCount %d: SQS moves it to %s",
                        self.function, message["MessageId"], message["Attributes"]["ApproximateReceiveCount"],
                        self.max_receive_count, self.dead_letter_queue)
        with self._lock:
            self.stats.messages_to_dlq += len(last)

    def _delete_messages(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start:start + 10]
            resp = self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            with self._lock:
                self.stats.messages_deleted += len(resp.get("Successful") or [])
                self.stats.delete_errors += len(resp.get("Failed") or [])
            for failure in resp.get("Failed") or []:
                log.warning("%s: could not delete a message from %s: %s", self.function, self.queue_name, failure)

    # -- loop
    def _failed(self, exc: BaseException) -> None:
        """Log (once per distinct error, then every 100th) and remember an error; polling goes on."""
        text = repr(exc)
        count = self.last_error["count"] + 1 if self.last_error and self.last_error["error"] == text else 1
        if count == 1 or count % 100 == 0:
            log.error("SQS poller %s <- %s (x%d): %s", self.function, self.queue_name, count, text)
        self.error = text
        self.last_error = {"error": text, "at": datetime.now(UTC).isoformat(), "count": count}

    def run(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue  # every slot busy: receive nothing until one frees up
            try:
                batch = self._gather()
                self.error = None
            except Exception as exc:
                self._slots.release()
                if not self._stop.is_set():
                    self._failed(exc)
                    self._stop.wait(1.0)  # no busy loop on a persistent error
                continue
            if not batch or self._stop.is_set():
                # Stopped with a batch in hand: it is not delivered and comes back after the visibility timeout.
                self._slots.release()
                continue
            with self._lock:
                self.stats.in_flight += 1
                self.stats.peak_concurrency = max(self.stats.peak_concurrency, self.stats.in_flight)
            threading.Thread(
                target=self._deliver, args=(batch,), name=f"sqs-invoke-{self.function}", daemon=True
            ).start()
