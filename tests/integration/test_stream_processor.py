"""The stream processor over REAL stream records: moto's stream of the chat table, read through the
DynamoDB Streams API (GetRecords), shaped as Lambda delivers them, fed to the Lambda handler.

Shown here: counts stay exact when a batch is delivered once, twice, and as suffixes after a failure
injected in the middle of it; `batchItemFailures` names exactly the failed record and those after it;
an API delete and a TTL delete (REMOVE with the service identity) leave no item naming the session."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chatkeep import aws, clock
from chatkeep.auth import Principal
from chatkeep.observability import metrics
from chatkeep.repository import keys
from chatkeep.repository.batch import UnwrittenItems
from chatkeep.repository.codec import from_item, to_av
from chatkeep.repository.dynamodb import DynamoDBChatRepository
from chatkeep.repository.search_index import SearchIndex
from chatkeep.repository.stream_store import StreamStore
from chatkeep.service import ChatService
from chatkeep.settings import get_settings
from chatkeep.stream import processor as stream_processor
from chatkeep.stream.processor import CoalescingBatchProcessor, handle
from chatkeep_local.harness import LambdaContext, declared_handler
from chatkeep_local.stream_reader import StreamReader

from tests.conftest import emf_lines

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@dataclass
class Harness:
    client: Any
    service: ChatService
    reader: StreamReader
    user: Principal

    @property
    def chat_table(self) -> str:
        return get_settings().chat_table_name

    @property
    def search_table(self) -> str:
        return get_settings().search_table_name

    def deliver(self, records: list[dict], processor: CoalescingBatchProcessor | None = None) -> dict:
        proc = processor or CoalescingBatchProcessor()
        return handle({"Records": records}, None, processor=proc)

    def settle(self) -> None:
        """Deliver the stream until it is quiet (our own count updates come back as MODIFY records)."""
        for _ in range(5):
            records = self.reader.read_new()
            if not records:
                return
            assert self.deliver(records) == {"batchItemFailures": []}
        raise AssertionError("the stream does not settle")

    def session_item(self, sid: int) -> dict | None:
        item = self.client.get_item(TableName=self.chat_table, ConsistentRead=True,
                                    Key={"pk": to_av(keys.session_pk("ws1", sid)), "sk": to_av("S")}).get("Item")
        return from_item(item) if item else None

    def scan(self, table: str) -> list[dict]:
        items, kwargs = [], {"TableName": table}
        while True:
            page = self.client.scan(**kwargs)
            items += [from_item(i) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def items_naming(self, sid: int) -> list[dict]:
        """Every item in any table that names the session (scans: fine in tests, never in product code)."""
        padded = keys.pad(sid)
        found = []
        for table in (self.chat_table, self.search_table):
            for item in self.scan(table):
                text_ = " ".join(str(item.get(k, "")) for k in ("pk", "sk", "spk", "msk", "starter_key"))
                if padded in text_ or item.get("sid") == sid:
                    found.append(item)
        return found


@pytest.fixture
def harness(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """tests/conftest.py's `dynamodb` fixture: moto with the tables of template.yaml (created by the
    local runtime's template helper), table names in the environment."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    stream_processor.reset()
    service = ChatService(DynamoDBChatRepository())
    user = Principal(sub="u1", workspace_id="ws1", name="Ann", scopes=frozenset(), is_service=False)
    yield Harness(aws.dynamodb(), service, StreamReader(get_settings().chat_table_name), user)
    stream_processor.reset()


class CountFailsFor(StreamStore):
    """The count update of one session fails (as a DynamoDB error on its UpdateItem would)."""

    def __init__(self, session_id: int) -> None:
        super().__init__()
        self.session_id = session_id

    def apply_message_counts(self, workspace_id: str, session_id: int, records: Any) -> Any:
        if session_id == self.session_id:
            raise RuntimeError("injected failure")
        return super().apply_message_counts(workspace_id, session_id, records)


class IndexFailsFor(SearchIndex):
    """BatchWriteItem leaves one session's index entries unwritten; the others land (UnwrittenItems names
    what was left, as after DynamoDB's UnprocessedItems outlast the retries)."""

    def __init__(self, session_id: int) -> None:
        super().__init__()
        self.session_id = session_id

    def write(self, puts: Any = (), deletes: Any = ()) -> int:
        puts, deletes = list(puts), list(deletes)
        lost = [{"PutRequest": {"Item": e.item()}} for e in puts if e.session_id == self.session_id]
        lost += [{"DeleteRequest": {"Key": e.key()}} for e in deletes if e.session_id == self.session_id]
        calls = super().write(puts=[e for e in puts if e.session_id != self.session_id],
                              deletes=[e for e in deletes if e.session_id != self.session_id])
        if lost:
            raise UnwrittenItems(self.table_name, lost, "injected failure")
        return calls


def failing_session(session_id: int, phase: str) -> CoalescingBatchProcessor:
    """A processor whose work for one session fails in `phase` ("count" or "index")."""
    if phase == "count":
        return CoalescingBatchProcessor(store=CountFailsFor(session_id))
    return CoalescingBatchProcessor(index=IndexFailsFor(session_id))


def seqs(records: list[dict]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in records]


def build_history(h: Harness) -> tuple[dict[int, int], list[dict]]:
    """Three sessions in one container with interleaved messages; returns ({sid: messages}, records)."""
    a = h.service.create_session(h.user, 500, title="Alpha planning")
    b = h.service.create_session(h.user, 500, title="Beta review")
    c = h.service.create_session(h.user, 500, title=None)
    plan = [a, a, b, a, c, b, a, c, b, b, a]
    for n, session in enumerate(plan):
        h.service.post_message(h.user, session.id, content=f"message {n} about café résumé")
    expected = {s.id: plan.count(s) for s in (a, b, c)}
    return expected, h.reader.read_new()


def assert_counts(h: Harness, expected: dict[int, int]) -> None:
    for sid, n in expected.items():
        item = h.session_item(sid)
        assert item is not None
        assert item.get("message_count") == n, (sid, item.get("message_count"), n)
        assert item.get("last_message_at")


# ---------------------------------------------------------------- counts under redelivery

def test_real_records_once_and_twice(harness: Harness):
    expected, records = build_history(harness)
    assert len(records) > 20  # session INSERTs, message + claim INSERTs, session MODIFYs
    assert harness.deliver(records) == {"batchItemFailures": []}
    assert_counts(harness, expected)
    assert harness.deliver(records) == {"batchItemFailures": []}
    assert_counts(harness, expected)
    # our own count updates come back as MODIFY records: they change nothing
    own = harness.reader.read_new()
    assert own and {r["eventName"] for r in own} == {"MODIFY"}
    assert harness.deliver(own) == {"batchItemFailures": []}
    assert_counts(harness, expected)


def test_every_suffix_replay_is_exact(harness: Harness):
    expected, records = build_history(harness)
    assert harness.deliver(records) == {"batchItemFailures": []}
    for cut in range(len(records)):
        assert harness.deliver(records[cut:]) == {"batchItemFailures": []}
        assert_counts(harness, expected)


def test_prefix_then_overlapping_batches(harness: Harness):
    """Lambda may re-batch after a retry: a later batch can start before and end after the watermark."""
    expected, records = build_history(harness)
    for cut in (3, 9, 17):
        harness.deliver(records[:cut])
        harness.deliver(records[max(0, cut - 5):])
        assert_counts(harness, expected)
        harness.deliver(records)
        assert_counts(harness, expected)


@pytest.mark.parametrize("phase", ["count", "index"])
def test_failure_in_the_middle_reports_the_suffix_and_the_replay_is_exact(harness: Harness, phase: str):
    expected, records = build_history(harness)
    sessions = list(expected)
    victim = sessions[1]  # b: its first record is in the middle of the batch
    victim_pk = keys.session_pk("ws1", victim)
    first = next(i for i, r in enumerate(records)
                 if r["dynamodb"]["Keys"]["pk"]["S"] == victim_pk and r["eventName"] == "INSERT")
    assert 0 < first < len(records) - 1

    response = harness.deliver(records, failing_session(victim, phase))
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == seqs(records[first:])  # exactly the failed record and every one after it
    if phase == "count":  # nothing of the victim was counted (its update is one conditional write)
        assert harness.session_item(victim).get("message_count") == 0
    # (phase "index": its count landed before the index write failed; the replay must not add it again)
    # Lambda retries from the lowest reported sequence number: deliver that suffix
    lowest = min(failed, key=int)
    suffix = [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= int(lowest)]
    assert harness.deliver(suffix) == {"batchItemFailures": []}
    assert_counts(harness, expected)
    # and once more, whole: still exact
    assert harness.deliver(records) == {"batchItemFailures": []}
    assert_counts(harness, expected)


def test_failure_at_every_position(harness: Harness):
    """For every session as the victim and a later re-delivery of the reported suffix: exact."""
    expected, records = build_history(harness)
    for victim in expected:
        try:
            response = harness.deliver(records, failing_session(victim, "count"))
            failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
            start = min(int(s) for s in failed)
        except Exception:  # the whole batch failed (the victim owns the first record): Lambda retries all
            start = int(records[0]["dynamodb"]["SequenceNumber"])
        harness.deliver([r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= start])
        assert_counts(harness, expected)


def test_unprocessed_items_from_dynamodb_are_retried(harness: Harness):
    """BatchWriteItem answering with UnprocessedItems (throttling): retried with backoff, all land."""
    _, records = build_history(harness)
    real = harness.client
    calls: list[int] = []

    class Throttled:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def batch_write_item(self, RequestItems: dict) -> dict:  # noqa: N803
            (table, reqs), = RequestItems.items()
            assert len(reqs) <= 25
            calls.append(len(reqs))
            if len(calls) % 2 == 1 and len(reqs) > 1:  # every other call: half is "unprocessed"
                half = len(reqs) // 2
                real.batch_write_item(RequestItems={table: reqs[:half]})
                return {"UnprocessedItems": {table: reqs[half:]}}
            return real.batch_write_item(RequestItems=RequestItems)

    index = SearchIndex(client=Throttled(), sleep=lambda s: None)
    proc = CoalescingBatchProcessor(store=StreamStore(), index=index)
    assert harness.deliver(records, proc) == {"batchItemFailures": []}
    assert len(calls) > 2
    assert SearchIndex().matching_sessions("ws1", 500, ["cafe", "resu"])  # every word landed


# ---------------------------------------------------------------- search index

def test_index_title_and_content_words_and_rename(harness: Harness):
    h = harness
    s1 = h.service.create_session(h.user, 700, title="Élan Vital")
    s2 = h.service.create_session(h.user, 700, title="Groceries")
    h.service.post_message(h.user, s2.id, content="Buy ÉLAN bars and COFFEE")
    h.deliver(h.reader.read_new())
    index = SearchIndex()
    assert index.matching_sessions("ws1", 700, ["ela"]) == {s1.id: True, s2.id: False}
    assert index.matching_sessions("ws1", 700, ["ela", "cof"]) == {s2.id: False}
    assert index.matching_sessions("ws1", 700, ["vit", "bars"]) == {}
    h.service.update_session(h.user, s1.id, title="Vital signs")
    h.deliver(h.reader.read_new())
    assert index.matching_sessions("ws1", 700, ["ela"]) == {s2.id: False}
    assert index.matching_sessions("ws1", 700, ["sig", "vit"]) == {s1.id: True}
    entries = [i for i in h.scan(h.search_table) if i["sid"] == s1.id]
    assert sorted(i["word"] for i in entries) == ["signs", "vital"]


# ---------------------------------------------------------------- cascades

def _populate(h: Harness, sid: int, n: int = 30) -> None:
    for i in range(n):
        h.service.post_message(h.user, sid, content=f"note {i} word{i % 7} shared")


def test_api_delete_leaves_nothing_naming_the_session(harness: Harness):
    h = harness
    starter = h.service.starter_session(h.user, None)
    other = h.service.create_session(h.user, 800, title="Keep me")
    _populate(h, starter.id, 30)  # > 25: several BatchWriteItem requests
    _populate(h, other.id, 3)
    h.settle()
    assert h.items_naming(starter.id)
    h.service.delete_session(h.user, starter.id)
    records = h.reader.read_new()
    assert [r["eventName"] for r in records] == ["REMOVE"]
    assert h.deliver(records) == {"batchItemFailures": []}
    assert h.items_naming(starter.id) == []
    # the cascade's own REMOVE records (messages, claims, entries' table has no stream, pointer): no-ops
    assert h.deliver(h.reader.read_new()) == {"batchItemFailures": []}
    # the other session is untouched
    assert h.session_item(other.id)["message_count"] == 3
    assert SearchIndex().matching_sessions("ws1", 800, ["shared"]) == {other.id: False}
    # a redelivery of the REMOVE is harmless
    assert h.deliver(records) == {"batchItemFailures": []}


def test_ttl_delete_leaves_nothing_naming_the_session(harness: Harness):
    h = harness
    session = h.service.create_session(h.user, 900, title="Expiring soon")
    _populate(h, session.id, 5)
    h.settle()
    # What DynamoDB TTL does: delete the item as the service principal. moto records the REMOVE;
    # the identity is the only thing a TTL record adds, so it is added to that real record.
    clock.advance(0)
    h.client.delete_item(TableName=h.chat_table,
                         Key={"pk": to_av(keys.session_pk("ws1", session.id)), "sk": to_av("S")})
    (record,) = h.reader.read_new()
    record["userIdentity"] = dict(TTL_IDENTITY)
    proc = CoalescingBatchProcessor()
    assert h.deliver([record], proc) == {"batchItemFailures": []}
    assert proc.stats.ttl_cascades == 1 and proc.stats.cascades == 1
    assert h.items_naming(session.id) == []


def test_remove_in_the_same_batch_as_the_messages(harness: Harness):
    """Created, written to and deleted before the stream function ran: one batch, nothing left."""
    h = harness
    session = h.service.create_session(h.user, 901, title="Short lived")
    _populate(h, session.id, 4)
    h.service.delete_session(h.user, session.id)
    records = h.reader.read_new()
    assert h.deliver(records) == {"batchItemFailures": []}
    assert h.items_naming(session.id) == []
    # replay of every suffix stays clean
    for cut in range(len(records)):
        assert h.deliver(records[cut:]) == {"batchItemFailures": []}
        assert h.items_naming(session.id) == []


def test_starter_pointer_kept_when_it_names_a_newer_session(harness: Harness):
    h = harness
    starter = h.service.starter_session(h.user, None)
    h.deliver(h.reader.read_new())
    old_item = h.session_item(starter.id)
    # the pointer was since replaced by another starter session
    pk, sk = keys.user_pk("ws1", "u1"), keys.starter_sk(None)
    h.client.put_item(TableName=h.chat_table, Item={"pk": to_av(pk), "sk": to_av(sk), "sid": to_av(42)})
    h.client.delete_item(TableName=h.chat_table,
                         Key={"pk": to_av(keys.session_pk("ws1", starter.id)), "sk": to_av("S")})
    assert old_item is not None
    h.deliver(h.reader.read_new())
    pointer = h.client.get_item(TableName=h.chat_table, Key={"pk": to_av(pk), "sk": to_av(sk)}).get("Item")
    assert pointer is not None and pointer["sid"] == {"N": "42"}


# ---------------------------------------------------------------- the Lambda handler and the sample events

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize("name", [
    "dynamodb_insert_session", "dynamodb_insert_message", "dynamodb_modify_session_title",
    "dynamodb_remove_session", "dynamodb_ttl_remove_session",
])
def test_sample_events_through_the_lambda_handler(harness: Harness, name: str):
    event = json.loads((EVENTS / f"{name}.json").read_text())
    record = event["Records"][0]
    assert record["eventSource"] == "aws:dynamodb" and record["eventVersion"] == "1.1"
    assert ("userIdentity" in record) == (name == "dynamodb_ttl_remove_session")
    assert declared_handler("StreamProcessorFunction")(event, LambdaContext()) == {"batchItemFailures": []}
    if name == "dynamodb_insert_session":
        image = record["dynamodb"]["NewImage"]
        ws, cid, sid = image["ws"]["S"], int(image["cid"]["N"]), int(image["sid"]["N"])
        assert SearchIndex().matching_sessions(ws, cid, ["cafe"]) == {sid: True}


def test_poison_session_dead_lettered_does_not_lose_healthy_sessions(harness: Harness):
    """Lambda's path for a poison pill: the batch fails whole (bisect), the half holding the poison is
    retried until given up and dead-lettered, the other half and later batches go on. A healthy session
    whose records sat in the dead-lettered half must not lose them (its watermark moves on later)."""
    h = harness
    bad = h.service.create_session(h.user, 950, title="Poison")
    late = h.service.create_session(h.user, 950, title="Healthy")
    h.settle()
    for n in range(3):
        h.service.post_message(h.user, bad.id, content=f"bad {n}")
        h.service.post_message(h.user, late.id, content=f"late {n}")
    records = h.reader.read_new()

    def attempt(batch: list[dict]) -> None:
        # BatchProcessingError when the whole batch failed: Lambda bisects (below)
        with contextlib.suppress(Exception):
            h.deliver(batch, failing_session(bad.id, "count"))

    attempt(records)  # whole batch fails (bad owns the first record)
    half = len(records) // 2
    for _ in range(5):  # MaximumRetryAttempts on the first half, then it is dead-lettered
        attempt(records[:half])
    dead_letter = records[:half]
    for _ in range(6):  # the second half: the poison is still there, retried, dead-lettered too
        attempt(records[half:])
    dead_letter += records[half:]
    h.service.post_message(h.user, late.id, content="late 3")  # later batches move the watermark on
    h.settle()
    assert h.session_item(late.id)["message_count"] == 4
    # operators replay the dead-lettered range once the poison is fixed: everything exact
    assert h.deliver(dead_letter) == {"batchItemFailures": []}
    assert h.session_item(late.id)["message_count"] == 4
    # (the poisoned session itself is exact here only because nothing of it came after the dead letters)
    assert h.session_item(bad.id)["message_count"] == 3


def test_given_posted_messages_when_their_batch_is_processed_then_one_emf_line_counts_them(
        harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Messages are counted here, once per batch (the API functions do not count posts per request)."""
    h = harness
    session = h.service.create_session(h.user, 1, title="counted")
    for n in range(3):
        h.service.post_message(h.user, session.id, content=f"message {n}")
    records = h.reader.read_new()
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # Other tests call handle() without the Lambda handler's flush: start from an empty metric set.
    metrics.clear_metrics()
    capsys.readouterr()

    reply = declared_handler("StreamProcessorFunction")({"Records": records}, LambdaContext())
    assert reply == {"batchItemFailures": []}

    lines = emf_lines(capsys.readouterr().out)
    assert len(lines) == 1
    assert lines[0]["StreamMessagesCounted"] in (3, [3])
    assert lines[0]["StreamRecordsProcessed"] in (len(records), [len(records)])
