"""Section 7: peers. One chat workload (one message of 264 characters, appended and read back) through chatkeep's
declared handlers and through what people pick instead: LangChain's DynamoDBChatMessageHistory, LangGraph's
DynamoDB checkpointer (langgraph-checkpoint-aws) and a plain one-item-per-message table as the floor.

Per store, in a fresh moto of its own: one conversation grows to each size (1, 100, 500, 1,000 messages) or until
the store refuses an append; at each size, the DynamoDB requests and bytes of one append and of one history read,
the client's CPU, and the largest item. Then 16 writers x 50 appends into one new conversation, and what survives.
Peers whose packages are missing are skipped with the import error (`pip install -e '.[peers]'`).
How to read it: bench/README.md, section 7."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.common import RequestCounter, median
from bench.moto_fidelity import ITEM_LIMIT
from bench.peer_stores import PEERS, ChatkeepStore, PlainStore, Store, Unavailable, Writer

MESSAGE = ("I was charged twice for my March invoice (order 48213) and the second charge is still pending on my card. "
           "Could you refund the duplicate, confirm the billing address on file, and tell me whether the April "
           "renewal will go through as usual or needs anything from me?")
assert len(MESSAGE) == 264  # the workload's one message, the same for every store
SIZES = (1, 100, 500, 1_000)
WINDOW = 10  # CPU per append at N: median of the appends N-9..N (at N = 1: the first append of 10 conversations)
READS = 3  # CPU per read: median of 3
NEWEST = 20  # a chat screen's or a prompt's read: the newest 20 messages
WRITERS, APPENDS_EACH = 16, 50
LIMIT_SEARCH_CAP = 20_000  # messages: past this, a store is said to have no limit it reaches


_STARTED = time.time()


def progress(line: str) -> None:
    """To stderr: `make bench` keeps stdout quiet while a section runs."""
    print(f"  peers {time.time() - _STARTED:6.1f} s  {line}", file=sys.stderr, flush=True)


@dataclass
class Sample:
    requests: int
    calls: dict[str, int]
    sent: int  # request body bytes sent to DynamoDB
    received: int  # response body bytes received
    cpu_ms: float  # process CPU minus what moto spent answering (DynamoDB's side)
    largest_item: int  # the largest item the responses returned, by DynamoDB's item-size rules
    result: Any = None
    error: str | None = None


class Meter:
    """botocore hooks on every client a store's writers use: API calls (the harness's RequestCounter), body
    bytes each way, the items returned, and the CPU moto spends answering, which is subtracted from the client's
    CPU: moto's stubber is a built-in `before-send` handler, so it runs between the first handler of
    `before-send.dynamodb` (the more specific name runs first) and the last handler of `before-send`."""

    def __init__(self) -> None:
        self.calls = RequestCounter()
        self.sent = self.received = self.largest = 0
        self.moto_cpu = 0.0
        self._started = threading.local()
        self._lock = threading.Lock()
        self._attached: set[int] = set()

    def attach(self, writer: Writer) -> Writer:
        for client in writer.clients():
            if id(client) in self._attached:
                continue
            self._attached.add(id(client))
            events, tag = client.meta.events, f"peers-{id(self)}"
            events.register("before-call.dynamodb", self.calls, unique_id=f"{tag}-calls")
            events.register_first("before-send.dynamodb", self._sending, unique_id=f"{tag}-send")
            events.register_last("before-send", self._answered, unique_id=f"{tag}-answered")
            # first: before boto3's resource layer turns the items into Python values
            events.register_first("after-call.dynamodb", self._received, unique_id=f"{tag}-received")
        return writer

    def _sending(self, request: Any = None, **_: Any) -> None:
        body = request.body or b""
        with self._lock:
            self.sent += len(body.encode() if isinstance(body, str) else body)
        self._started.cpu = time.process_time()

    def _answered(self, **_: Any) -> None:
        spent = time.process_time() - self._started.cpu
        with self._lock:
            self.moto_cpu += spent

    def _received(self, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
        from bench.cost import item_size

        parsed = parsed or {}
        items = [*([parsed["Item"]] if parsed.get("Item") else []), *parsed.get("Items", []),
                 *(i for found in (parsed.get("Responses") or {}).values() for i in found)]
        with self._lock:
            self.received += len(http_response.content or b"")
            self.largest = max([self.largest, *(item_size(i) for i in items)])

    def measure(self, operation: Callable[[], Any]) -> Sample:
        self.calls.reset()
        self.sent = self.received = self.largest = 0
        self.moto_cpu = 0.0
        error, result = None, None
        started = time.process_time()
        try:
            result = operation()
        except Exception as exc:  # a store refusing an append is a figure, not a crash
            error = f"{type(exc).__name__}: {exc}"
        cpu = time.process_time() - started - self.moto_cpu
        return Sample(self.calls.total, dict(self.calls.calls), self.sent, self.received, cpu * 1000,
                      self.largest, result, error)


@contextmanager
def fresh_moto(store: Store) -> Iterator[None]:
    """A moto of the store's own (its tables alone, empty), with DynamoDB's request atomicity
    (chatkeep_local.moto_dynamodb: one lock around moto's backend) so concurrent writers race as they would,
    DynamoDB's item-size limit and a Query that does not sort the whole table (bench/moto_fidelity.py)."""
    from bench.moto_fidelity import like_dynamodb

    if isinstance(store, ChatkeepStore):
        from bench.common import moto_tables

        with moto_tables(), like_dynamodb():
            store.start()
            yield
        return
    from chatkeep_local import moto_dynamodb
    from moto import mock_aws

    moto_dynamodb.install()
    with mock_aws(), like_dynamodb():
        store.start()
        yield


def _summary(samples: list[Sample], exact: Sample) -> dict[str, Any]:
    """Requests and bytes of one operation (they do not vary); CPU: the median of the samples."""
    return {"requests": exact.requests, "calls": exact.calls, "sent": exact.sent, "received": exact.received,
            "cpu_ms": round(median([s.cpu_ms for s in samples]), 3)}


def _refused(sample: Sample) -> str:
    return (sample.error or "")[:400]


def measure_size(store: Store, size: int, window: int, reads: int) -> dict[str, Any]:
    """A conversation of `size` messages in a fresh moto: the first size - window seeded (bench/peer_stores.py:
    in one request where the store's API takes many messages at once), the last `window` appended and measured,
    then the reads. At size 1: the first append of `window` conversations. {"refused": ...} when it cannot."""
    with fresh_moto(store):
        meter = Meter()
        if size == 1:
            writers = [meter.attach(store.writer(store.new_conversation())) for _ in range(max(1, window))]
            appends = [meter.measure(lambda w=w: w.append(MESSAGE)) for w in writers]
            main = writers[0]
        else:
            main = meter.attach(store.writer(store.new_conversation()))
            seeded = max(1, size - window)
            seeding = meter.measure(lambda: main.seed(MESSAGE, seeded))
            if seeding.error:
                return {"refused": {"while_seeding": seeded, "error": _refused(seeding)}}
            appends = [meter.measure(lambda: main.append(MESSAGE)) for _ in range(size - seeded)]
        for n, sample in enumerate(appends, start=size - len(appends) + 1):
            if sample.error:
                return {"refused": {"at": 1 if size == 1 else n, "error": _refused(sample)}}
        full = [meter.measure(main.history) for _ in range(reads)]
        newest = [meter.measure(lambda: main.newest(NEWEST)) for _ in range(reads)]
    for sample, want in ((full[-1], size), (newest[-1], min(NEWEST, size))):
        if sample.error or len(sample.result) != want:
            raise AssertionError(f"{store.name}: read {sample.error or len(sample.result)} of {want} messages")
    return {"append": _summary(appends, appends[-1]), "history": _summary(full, full[-1]),
            "newest": _summary(newest, newest[-1]), "largest_item": full[-1].largest_item}


def find_limit(store: Store, fits_up_to: int, refused_at: int | None, guess: int) -> dict[str, Any]:
    """The first append the store refuses: the largest conversation that seeds (galloping out from `guess`, the
    projection from the item's growth, then bisecting), then real appends on a conversation of that size until
    one is refused."""
    with fresh_moto(store):
        def fits(n: int) -> bool:
            writer = store.writer(store.new_conversation())
            try:
                writer.seed(MESSAGE, n)
                return True
            except Exception:  # the refusal is what we look for
                return False

        lo, hi, step = fits_up_to, refused_at, 4
        probe: int | None = max(lo + 1, min(guess, hi - 1) if hi else guess)
        while hi is None or hi - lo > 1:
            if probe is None or not lo < probe < (hi or LIMIT_SEARCH_CAP + 1):
                if hi is None:
                    return {"kind": "none", "messages": None, "searched_to": lo}
                probe = (lo + hi) // 2
            if fits(probe):
                lo, probe = probe, probe + step
            else:
                hi, probe = probe, probe - step
            step *= 2
        meter = Meter()
        writer = meter.attach(store.writer(store.new_conversation()))
        writer.seed(MESSAGE, lo)
        largest = meter.measure(writer.history).largest_item
        for n in range(lo + 1, lo + 21):
            sample = meter.measure(lambda: writer.append(MESSAGE))
            if sample.error:
                return {"kind": "measured", "messages": n - 1, "refused_append": n, "error": _refused(sample),
                        "refused_sent": sample.sent, "largest_item": largest}
            largest = meter.measure(writer.history).largest_item
    return {"kind": "none", "messages": None, "searched_to": lo + 20}


def grow(store: Store, sizes: tuple[int, ...], window: int = WINDOW, reads: int = READS,
         search_limit: bool = True) -> dict[str, Any]:
    """The figures at each size, then the item-size headroom."""
    with fresh_moto(store):  # imports, caches, compiled documents: warm, in a moto of its own (not measured)
        warm = store.writer(store.new_conversation())
        for _ in range(3):
            warm.append(MESSAGE)
            warm.history(), warm.newest(NEWEST)
    at: dict[int, dict[str, Any]] = {}
    refused: dict[str, Any] | None = None
    for size in sizes:
        figures = measure_size(store, size, window, reads)
        progress(f"{store.name}: {size} messages{' (refused)' if 'refused' in figures else ''}")
        if "refused" in figures:
            refused = figures["refused"]
            break
        at[size] = figures
    return {"sizes": at, "refused": refused, "headroom": headroom(store, at, refused, search_limit)}


def headroom(store: Store, at: dict[int, dict[str, Any]], refused: dict[str, Any] | None,
             search: bool = True) -> dict[str, Any]:
    """Messages of the workload's size until an item limit: searched for and measured when the largest item grows
    with the conversation (or an append was refused), none when it does not grow; `search` False: projected."""
    measured = sorted(at.items())
    last_ok, last = (measured[-1][0], measured[-1][1]["largest_item"]) if measured else (0, 0)
    growth = ((last - measured[-2][1]["largest_item"]) / (last_ok - measured[-2][0])
              if len(measured) >= 2 else 0.0)
    if refused is None and growth < 1:  # under a byte a message: the largest item does not grow
        return {"kind": "none", "messages": None, "largest_item": last}
    refused_at = refused.get("at", refused.get("while_seeding")) if refused else None
    guess = last_ok + int((ITEM_LIMIT - last) / growth) if growth >= 1 else last_ok + 1
    if not search:
        return {"kind": "projected", "messages": guess, "bytes_per_message": round(growth, 1)}
    found = find_limit(store, last_ok, refused_at, guess)
    progress(f"{store.name}: item limit found (append #{found.get('refused_append', '-')} refused)")
    return {**found, "bytes_per_message": round(growth, 1)}


def race(store: Store, writers: int = WRITERS, each: int = APPENDS_EACH) -> dict[str, Any]:
    """`writers` threads, each its own client, append `each` messages to one conversation at once; then count
    what the store's history holds. lost = acknowledged appends missing from the history."""
    with fresh_moto(store):
        conversation = store.new_conversation()
        pool = [store.concurrent_writer(conversation) for _ in range(writers)]
        start = threading.Barrier(writers)
        acknowledged, refused = Counter[int](), Counter[str]()

        def write(i: int) -> None:
            start.wait()
            for _ in range(each):
                try:
                    pool[i].append(MESSAGE)
                    acknowledged[i] += 1
                except Exception as exc:  # counted: a refused append is not a lost one
                    refused[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1

        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        held = len(store.writer(conversation).history())
    total = sum(acknowledged.values())
    progress(f"{store.name}: {writers} x {each} concurrent appends, {held} held")
    return {"writers": writers, "appends_each": each, "acknowledged": total, "refused": sum(refused.values()),
            "refusals": dict(refused), "in_history": held, "lost": total - held}


def stores() -> tuple[list[Store], dict[str, str]]:
    """chatkeep, the peers that import here, the floor; and the peers skipped, with why."""
    found: list[Store] = [ChatkeepStore()]
    skipped: dict[str, str] = {}
    for peer in PEERS:
        try:
            found.append(peer())
        except Unavailable as why:
            skipped[peer.name] = str(why)
    return [*found, PlainStore()], skipped


def run(sizes: tuple[int, ...] = SIZES, writers: int = WRITERS, each: int = APPENDS_EACH,
        window: int = WINDOW, reads: int = READS, search_limits: bool = True) -> dict[str, Any]:
    from bench.peers_report import tables

    started = time.time()
    found, skipped = stores()
    # the checkpointer logs every refused write at ERROR: the refusals are figures here, counted in the tables
    logging.getLogger("langgraph_checkpoint_aws").setLevel(logging.CRITICAL)
    results: dict[str, Any] = {}
    for store in found:
        progress(f"{store.name}: start")
        results[store.name] = {"how": store.how, "versions": getattr(store, "versions", {}),
                               **grow(store, sizes, window, reads, search_limits), "race": race(store, writers, each)}
    out = {"message_chars": len(MESSAGE), "sizes": list(sizes), "window": window, "reads": reads,
           "stores": results, "skipped": skipped, "floor": PlainStore.name,
           "seconds": round(time.time() - started, 1)}
    out["table"] = tables(out)
    return out
