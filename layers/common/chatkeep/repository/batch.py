"""BatchWriteItem for every table: at most 25 requests per call (moto accepts more; AWS does not),
UnprocessedItems retried with exponential backoff and full jitter, bounded, then `UnwrittenItems`
(a ServiceUnavailable) naming what may not have been applied. Every write sent this way is idempotent
(a Put of a whole item, a Delete of a key), so a retry of the whole operation is always safe."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from chatkeep import aws
from chatkeep.errors import ServiceUnavailable
from chatkeep.repository.errors import translate_error
from chatkeep.settings import Settings, get_settings

BATCH_WRITE_LIMIT = 25  # DynamoDB's limit per BatchWriteItem (moto accepts more: enforce it here)
MAX_ATTEMPTS = 8  # per request: the first try + 7 retries of its unprocessed items
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0
PARALLEL_REQUESTS = 16  # reads of one operation in flight at once (a list's or a query word's sharded keys)

T = TypeVar("T")
R = TypeVar("R")


class UnwrittenItems(ServiceUnavailable):
    """BatchWriteItem left requests unprocessed after the bounded retries (or failed outright).

    `requests` are the WriteRequests (low-level shape) that were not applied; nothing is known about
    them except that they may or may not have been written, which is fine: every write here is
    idempotent (a Put of the same item, a Delete of a key)."""

    def __init__(self, table: str, requests: list[dict[str, Any]], cause: str) -> None:
        # The message can reach a client (a 503): it names no table. The table is kept for logs.
        super().__init__(f"the data store is busy: {len(requests)} writes were not applied ({cause}), retry")
        self.table = table
        self.requests = requests


class TableAccess:
    """One table through the shared client (or an injected one), with batch writes under the policy above:
    what the search index and the stream store share. `settings_table` names the Settings field that gives
    the table when none is passed."""

    settings_table: str

    def __init__(
        self,
        settings: Settings | None = None,
        client: Any | None = None,
        *,
        table_name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name or getattr(settings or get_settings(), self.settings_table)
        self._client = client
        self._sleep = sleep

    @property
    def client(self) -> Any:
        return self._client or aws.dynamodb()

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """One DynamoDB call; what is left of a failure after botocore's retries, in domain terms."""
        try:
            return getattr(self.client, operation)(**kwargs)
        except Exception as exc:
            translated = translate_error(exc)
            if translated is exc:
                raise
            raise translated from exc

    def batch_write(self, requests: Sequence[dict[str, Any]]) -> int:
        return batch_write(self.table_name, requests, client=self.client, sleep=self._sleep)

    @staticmethod
    def in_parallel(fn: Callable[[T], R], args: Sequence[T]) -> list[R]:
        """`fn` over `args` (reads of sharded keys) on up to PARALLEL_REQUESTS threads, results in order: the
        latency of one read rather than of all. boto3 clients are thread-safe. The first failure (what is left
        after botocore's retries) cancels the reads not started yet and is raised: a throttled table is not
        sent the rest."""
        if len(args) <= 1:
            return [fn(a) for a in args]
        with ThreadPoolExecutor(max_workers=min(PARALLEL_REQUESTS, len(args))) as pool:
            futures = [pool.submit(fn, a) for a in args]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                for future in futures:
                    future.cancel()
                raise failed.exception()  # type: ignore[misc]
            return [f.result() for f in futures]


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def backoff_delay(
    attempt: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**attempt))."""
    return random.uniform(0, min(cap, base * (2**attempt)))


def batch_write(
    table: str,
    requests: Sequence[dict[str, Any]],
    *,
    client: Any | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = MAX_ATTEMPTS,
) -> int:
    """Apply WriteRequests (`{"PutRequest": {"Item": ...}}` / `{"DeleteRequest": {"Key": ...}}`) to one
    table, 25 per BatchWriteItem. Returns the number of BatchWriteItem calls made.

    Unprocessed items are retried with exponential backoff and jitter, at most `max_attempts` tries
    per chunk; then, or on a client error, raises UnwrittenItems naming every request not known to be
    applied (the failing chunk's remainder and all later chunks). The caller dedupes keys: DynamoDB
    rejects a request that names the same key twice."""
    ddb = client or aws.dynamodb()
    calls = 0
    chunks = list(_chunks(list(requests), BATCH_WRITE_LIMIT))
    for position, chunk in enumerate(chunks):
        pending: list[dict[str, Any]] = list(chunk)
        attempt = 0
        while pending:
            if attempt >= max_attempts:
                rest = [r for c in chunks[position + 1 :] for r in c]
                raise UnwrittenItems(table, pending + rest, f"still unprocessed after {attempt} attempts")
            if attempt:
                sleep(backoff_delay(attempt - 1))
            attempt += 1
            calls += 1
            try:
                response = ddb.batch_write_item(RequestItems={table: pending})
            except Exception as exc:  # botocore already retried throttling/5xx (standard mode)
                rest = [r for c in chunks[position + 1 :] for r in c]
                raise UnwrittenItems(table, pending + rest, type(exc).__name__) from exc
            pending = list(response.get("UnprocessedItems", {}).get(table, []))
    return calls
