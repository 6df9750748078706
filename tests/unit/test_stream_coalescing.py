"""Unit tests of the stream processor: grouping/coalescing, failure mapping, index writes, batching.

No DynamoDB here: fake store/index/client objects record what the processor asks for."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from chatkeep.repository import keys
from chatkeep.repository.batch import BATCH_WRITE_LIMIT, UnwrittenItems, batch_write
from chatkeep.repository.codec import to_item
from chatkeep.repository.search_index import (
    CONTENT,
    TITLE,
    IndexEntry,
    SearchIndex,
)
from chatkeep.repository.stream_store import CountResult, StreamStore, pad_seq, parse_starter_key
from chatkeep.stream import records as rec
from chatkeep.stream.processor import CoalescingBatchProcessor, handle

WS = "ws1"


# ---------------------------------------------------------------- synthetic Lambda-shaped records

class Seq:
    def __init__(self) -> None:
        self.n = 1000

    def __call__(self) -> str:
        self.n += 7
        return str(self.n)


def _record(event: str, keys_: dict, new: dict | None, old: dict | None, seq: str, identity: dict | None = None):
    ddb: dict[str, Any] = {"Keys": to_item(keys_), "SequenceNumber": seq, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        ddb["NewImage"] = to_item(new)
    if old is not None:
        ddb["OldImage"] = to_item(old)
    out = {"eventID": f"e{seq}", "eventName": event, "eventSource": "aws:dynamodb", "dynamodb": ddb}
    if identity:
        out["userIdentity"] = identity
    return out


def session_image(sid: int, title: str | None, cid: int = 7, **extra: Any) -> dict:
    return {"pk": keys.session_pk(WS, sid), "sk": "S", "type": "session", "ws": WS, "sid": sid, "cid": cid,
            "owner": "u1", "title": title, **extra}


def message_image(sid: int, mid: int, content: str, cid: int = 7, at: str = "2026-01-01T00:00:00.000Z") -> dict:
    return {"pk": keys.session_pk(WS, sid), "sk": keys.message_sk(at, mid), "type": "message", "ws": WS,
            "sid": sid, "cid": cid, "mid": mid, "content": content, "created_at": at}


def msg_insert(seq: Seq, sid: int, mid: int, content: str = "hello world", at: str | None = None):
    img = message_image(sid, mid, content, at=at or f"2026-01-01T00:00:{mid % 60:02d}.000Z")
    return _record("INSERT", {"pk": img["pk"], "sk": img["sk"]}, img, None, seq())


def session_insert(seq: Seq, sid: int, title: str | None = None):
    img = session_image(sid, title)
    return _record("INSERT", {"pk": img["pk"], "sk": "S"}, img, None, seq())


def session_modify(seq: Seq, sid: int, old_title: str | None, new_title: str | None, **extra: Any):
    old, new = session_image(sid, old_title), session_image(sid, new_title, **extra)
    return _record("MODIFY", {"pk": old["pk"], "sk": "S"}, new, old, seq())


def session_remove(seq: Seq, sid: int, title: str | None = None, ttl: bool = False, starter_key: str | None = None):
    old = session_image(sid, title, starter_key=starter_key)
    identity = {"type": "Service", "principalId": "dynamodb.amazonaws.com"} if ttl else None
    return _record("REMOVE", {"pk": old["pk"], "sk": "S"}, None, old, seq(), identity)


# ---------------------------------------------------------------- fakes

class FakeStore:
    def __init__(self, fail_for: set[int] | None = None) -> None:
        self.count_calls: list[tuple[int, list[int]]] = []
        self.fail_for = fail_for or set()
        self.cascaded: list[int] = []
        self.pointers: list[tuple[tuple[str, str], int]] = []

    def apply_message_counts(self, ws: str, sid: int, records: list) -> CountResult:
        if sid in self.fail_for:
            raise RuntimeError("injected")
        self.count_calls.append((sid, [r.sequence_number for r in records]))
        return CountResult(counted=len(records))

    def iter_message_pages(self, ws: str, sid: int):
        self.cascaded.append(sid)
        return iter(())

    def delete_messages(self, ws: str, refs: Any) -> int:
        return 0

    def delete_starter_pointer(self, pointer: tuple[str, str], sid: int) -> bool:
        self.pointers.append((pointer, sid))
        return True


class FakeIndex:
    def __init__(self) -> None:
        self.writes: list[tuple[list[IndexEntry], list[IndexEntry]]] = []
        self.swept: list[int] = []
        self.unwrite_sessions: set[int] = set()

    def write(self, puts: Any = (), deletes: Any = ()) -> int:
        puts, deletes = list(puts), list(deletes)
        failing = [e for e in (*puts, *deletes) if e.session_id in self.unwrite_sessions]
        if failing:
            raise UnwrittenItems("search", [{"PutRequest": {"Item": e.item()}} for e in failing], "injected")
        self.writes.append((puts, deletes))
        return 1

    def delete_session_entries(self, ws: str, sid: int, already_deleted: Any = None) -> int:
        self.swept.append(sid)
        return 0


def run(records: list[dict], store: FakeStore | None = None, index: FakeIndex | None = None):
    proc = CoalescingBatchProcessor(store=store or FakeStore(), index=index or FakeIndex())  # type: ignore[arg-type]
    response = handle({"Records": records}, None, processor=proc)
    return response, proc


def failed_ids(response: dict) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


# ---------------------------------------------------------------- grouping and coalescing

def test_one_count_update_and_one_index_write_per_batch():
    seq = Seq()
    records = [msg_insert(seq, sid=1 + i % 3, mid=100 + i, content=f"alpha beta w{i % 5}") for i in range(90)]
    store, index = FakeStore(), FakeIndex()
    response, proc = run(records, store, index)
    assert response == {"batchItemFailures": []}
    assert sorted(sid for sid, _ in store.count_calls) == [1, 2, 3]  # one update per session
    assert all(len(seqs) == 30 for _, seqs in store.count_calls)
    assert len(index.writes) == 1  # one packed write for the batch
    puts, deletes = index.writes[0]
    assert deletes == []
    # distinct (session, word): 3 sessions x (alpha, beta + their w-words)
    per_session = {sid: {e.word for e in puts if e.session_id == sid} for sid in (1, 2, 3)}
    assert per_session[1] == {"alpha", "beta", "w0", "w3", "w1", "w4", "w2"}
    assert all(e.field == CONTENT for e in puts)
    assert len(puts) == len({(e.session_id, e.word) for e in puts})
    assert proc.stats.sessions == 3 and proc.stats.records == 90


def test_count_modify_and_other_items_are_ignored():
    seq = Seq()
    records = [
        session_modify(seq, 1, "same", "same", message_count=3, count_seq=pad_seq(5)),
        _record("INSERT", {"pk": "W#ws1#MID#0000000001", "sk": "MID"},
                {"pk": "W#ws1#MID#0000000001", "sk": "MID", "type": "message_claim"}, None, seq()),
        _record("INSERT", {"pk": "W#ws1#A#0000000001", "sk": "A"}, {"pk": "W#ws1#A#1", "sk": "A", "type": "agent"},
                None, seq()),
    ]
    store, index = FakeStore(), FakeIndex()
    response, proc = run(records, store, index)
    assert response == {"batchItemFailures": []}
    assert store.count_calls == [] and index.writes == []
    assert proc.stats.changes == 0


def test_title_changes_coalesce_and_cover_intermediate_titles():
    seq = Seq()
    records = [
        session_modify(seq, 1, "Alpha beta", "Beta gamma"),
        session_modify(seq, 1, "Beta gamma", "Delta beta"),
    ]
    index = FakeIndex()
    run(records, index=index)
    (puts, deletes), = index.writes
    assert {e.word for e in puts} == {"delta", "beta"} and all(e.field == TITLE for e in puts)
    assert {e.word for e in deletes} == {"alpha", "gamma"}


def test_remove_drops_earlier_work_and_cascades():
    seq = Seq()
    records = [
        session_insert(seq, 1, "Hello"),
        msg_insert(seq, 1, 11),
        session_remove(seq, 1, "Hello", ttl=True, starter_key="W#ws1#U#u1|STARTER#bot"),
        msg_insert(seq, 2, 21),
    ]
    store, index = FakeStore(), FakeIndex()
    response, proc = run(records, store, index)
    assert response == {"batchItemFailures": []}
    assert store.cascaded == [1] and index.swept == [1]
    assert store.pointers == [(("W#ws1#U#u1", "STARTER#bot"), 1)]
    assert [sid for sid, _ in store.count_calls] == [2]  # session 1's message is moot
    assert proc.stats.ttl_cascades == 1
    # the cascade deleted the title words it knows of; no live puts for session 1
    assert not any(e.session_id == 1 for puts, _ in index.writes for e in puts)
    assert any(e.session_id == 1 and e.word == "hello" for _, dels in index.writes for e in dels)


def test_content_is_indexed_up_to_32_kb():
    filler = "a" * (32 * 1024 - 1)
    text_ = filler + " zzzunique"
    assert "zzzunique" not in rec.truncate_content(text_)
    seq = Seq()
    index = FakeIndex()
    run([msg_insert(seq, 1, 1, content="first " + text_)], index=index)
    words = {e.word for e in index.writes[0][0]}
    assert "first" in words and "zzzunique" not in words
    assert rec.truncate_content("é" * 20000).encode() == ("é" * 16384).encode()


# ---------------------------------------------------------------- failure mapping

def test_failed_session_reports_its_first_record_and_everything_after():
    seq = Seq()
    records = [
        msg_insert(seq, 1, 1),   # 0  A
        msg_insert(seq, 2, 2),   # 1  B  <- B fails: report from here
        msg_insert(seq, 1, 3),   # 2  A
        msg_insert(seq, 3, 4),   # 3  C
        msg_insert(seq, 2, 5),   # 4  B
    ]
    store = FakeStore(fail_for={2})
    response, proc = run(records, store)
    want = [r["dynamodb"]["SequenceNumber"] for r in records[1:]]
    assert failed_ids(response) == want
    # every healthy session ran in full, also C (entirely after the cutoff): should the failing session
    # be a poison pill, the reported range is dead-lettered and C's records must already be counted
    assert [(sid, len(s)) for sid, s in store.count_calls] == [(1, 2), (3, 1)]
    assert proc.stats.failed_sessions == 1


def test_unwritten_index_items_fail_their_sessions():
    seq = Seq()
    records = [msg_insert(seq, 1, 1), msg_insert(seq, 2, 2), msg_insert(seq, 3, 3)]
    index = FakeIndex()
    index.unwrite_sessions = {3}
    response, _ = run(records, index=index)
    assert failed_ids(response) == [records[2]["dynamodb"]["SequenceNumber"]]


def test_unclassifiable_record_is_reported_with_its_suffix():
    seq = Seq()
    good = msg_insert(seq, 1, 1)
    bad = session_remove(seq, 9)
    bad_first = msg_insert(seq, 2, 2)
    del bad["dynamodb"]["OldImage"]  # a session REMOVE without OldImage: cannot cascade
    records = [good, bad, bad_first]
    store = FakeStore()
    response, _ = run(records, store)
    assert failed_ids(response) == [bad["dynamodb"]["SequenceNumber"], bad_first["dynamodb"]["SequenceNumber"]]
    assert [sid for sid, _ in store.count_calls] == [1, 2]  # healthy sessions run in full (DLQ safety)


def test_whole_batch_failure_raises_so_lambda_bisects():
    seq = Seq()
    records = [msg_insert(seq, 2, 1), msg_insert(seq, 1, 2)]
    with pytest.raises(BatchProcessingError):
        run(records, FakeStore(fail_for={2}))


def test_processor_instance_is_reusable_across_batches():
    seq = Seq()
    proc = CoalescingBatchProcessor(store=FakeStore(fail_for={2}), index=FakeIndex())  # type: ignore[arg-type]
    first = handle({"Records": [msg_insert(seq, 1, 1), msg_insert(seq, 2, 2)]}, None, processor=proc)
    assert len(first["batchItemFailures"]) == 1
    second = handle({"Records": [msg_insert(seq, 1, 3)]}, None, processor=proc)
    assert second == {"batchItemFailures": []}


# ---------------------------------------------------------------- starter pointer spelling

@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("W#ws1#U#u1|STARTER#bot", ("W#ws1#U#u1", "STARTER#bot")),
        ("W#ws1#U#u1|STARTER#", ("W#ws1#U#u1", "STARTER#")),
        ("W#ws1#U#u1#STARTER#bot", ("W#ws1#U#u1", "STARTER#bot")),
        ({"pk": "W#ws1#U#u1", "sk": "STARTER#x"}, ("W#ws1#U#u1", "STARTER#x")),
        ("STARTER#bot", ("W#ws1#U#u1", "STARTER#bot")),
        (None, None),
    ],
)
def test_parse_starter_key(value, expected):
    assert parse_starter_key(value, "ws1", "u1") == expected


# ---------------------------------------------------------------- batch writes

class FlakyClient:
    """BatchWriteItem that leaves the last `unprocessed` items of each request unprocessed `times` times."""

    def __init__(self, unprocessed: int = 0, times: int = 0) -> None:
        self.calls: list[int] = []
        self.unprocessed, self.times = unprocessed, times

    def batch_write_item(self, RequestItems: dict) -> dict:  # noqa: N803 - botocore's spelling
        (table, reqs), = RequestItems.items()
        assert len(reqs) <= BATCH_WRITE_LIMIT
        self.calls.append(len(reqs))
        if self.times > 0 and self.unprocessed:
            self.times -= 1
            return {"UnprocessedItems": {table: reqs[-self.unprocessed:]}}
        return {"UnprocessedItems": {}}


def _deletes(n: int) -> list[dict]:
    return [{"DeleteRequest": {"Key": {"pk": {"S": "p"}, "sk": {"S": str(i)}}}} for i in range(n)]


def test_batch_write_chunks_by_25_and_retries_unprocessed_with_backoff():
    client, sleeps = FlakyClient(unprocessed=5, times=3), []
    calls = batch_write("t", _deletes(60), client=client, sleep=sleeps.append)
    assert client.calls == [25, 5, 5, 5, 25, 10]
    assert calls == 6
    assert len(sleeps) == 3 and all(0 <= s <= 2.0 for s in sleeps)


def test_batch_write_gives_up_after_bounded_attempts():
    client = FlakyClient(unprocessed=3, times=100)
    with pytest.raises(UnwrittenItems) as info:
        batch_write("t", _deletes(30), client=client, sleep=lambda s: None, max_attempts=4)
    # the 3 still unprocessed of chunk 1 plus the 5 of chunk 2 that was never sent
    assert len(info.value.requests) == 8
    assert client.calls == [25, 3, 3, 3]


def test_index_write_dedupes_and_put_wins():
    client = FlakyClient()
    index = SearchIndex(client=client, table_name="search", sleep=lambda s: None)
    e = IndexEntry(WS, 7, 1, "word", TITLE)
    assert index.write(puts=[e, e], deletes=[e]) == 1
    assert client.calls == [1]


# ---------------------------------------------------------------- search read side

class QueryClient:
    def __init__(self, entries: list[str], page: int = 2) -> None:
        self.entries = sorted(entries)
        self.page = page
        self.queries: list[str] = []

    def query(self, **kw: Any) -> dict:
        assert "IndexName" not in kw and "FilterExpression" not in kw
        prefix = kw["ExpressionAttributeValues"][":w"]["S"]
        self.queries.append(prefix)
        hits = [sk for sk in self.entries if sk.startswith(prefix)]
        start = int(kw.get("ExclusiveStartKey", {}).get("i", 0))
        chunk = hits[start : start + self.page]
        out: dict[str, Any] = {"Items": [{"sk": {"S": sk}} for sk in chunk]}
        if start + self.page < len(hits):
            out["LastEvaluatedKey"] = {"i": start + self.page}
        return out


def test_matching_sessions_intersects_prefixes_and_flags_title_hits():
    sk = keys.search_sk
    client = QueryClient([
        sk("cafe", 1, "t"), sk("elan", 1, "t"),
        sk("cafeteria", 2, "c"), sk("elan", 2, "t"),
        sk("cafe", 3, "c"),
        sk("elanor", 4, "c"), sk("cafe", 4, "t"),
    ])
    index = SearchIndex(client=client, table_name="search")
    assert index.matching_sessions(WS, 7, ["caf", "ela"]) == {1: True, 2: False, 4: False}
    assert index.matching_sessions(WS, 7, ["caf"]) == {1: True, 2: False, 3: False, 4: True}
    assert index.matching_sessions(WS, 7, ["zzz", "caf"]) == {}
    assert client.queries[-1] == "zzz"  # stopped after the empty intersection
    assert index.matching_sessions(WS, 7, []) == {}


def test_pad_seq_orders_like_numbers():
    assert pad_seq("99") < pad_seq("100") and len(pad_seq("1")) == 40


def test_stream_store_accepts_settings_like_the_repository():
    from chatkeep.settings import Settings

    assert StreamStore(Settings(chat_table_name="c")).table_name == "c"
    assert SearchIndex(Settings(search_table_name="s")).table_name == "s"


def test_given_a_message_of_more_distinct_words_than_indexed_then_its_first_ones_are_indexed_and_the_rest_not():
    # Issue 18: one 32 KB message of 3,300 distinct words was 3,300 index writes.
    from chatkeep.text import MAX_INDEXED_WORDS

    many = [f"w{i:05d}" for i in range(3000)]
    seq = Seq()
    index = FakeIndex()
    run([msg_insert(seq, 1, 1, content=" ".join(many)), msg_insert(seq, 1, 2, content="w02999 again")], index=index)
    words = {e.word for puts, _ in index.writes for e in puts}
    assert set(many[:MAX_INDEXED_WORDS]) <= words and "w02999" in words and "again" in words  # each message's own
    assert len(words) == MAX_INDEXED_WORDS + 2 and not set(many[MAX_INDEXED_WORDS:-1]) & words
