"""chatkeep_local.streams and .ttl: Lambda-shaped records, batching/retry/bisect/DLQ, TTL identity."""

from __future__ import annotations

import dataclasses
import json
import time

import boto3
import pytest
from botocore.config import Config
from chatkeep_local import template as tpl
from chatkeep_local.streams import (
    TTL_IDENTITY,
    BatchDispatcher,
    LocalDlq,
    StreamPoller,
    SweptKeys,
    to_lambda_record,
)
from chatkeep_local.testing import write_sample_app
from chatkeep_local.ttl import TtlSweeper
from moto import mock_aws

# ------------------------------------------------------------------------------ dispatcher (fake fn)


def records(n, start=100):
    now = int(time.time())
    return [
        {
            "eventID": f"e{i}",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": now, "Keys": {"pk": {"S": f"k{i}"}},
                         "SequenceNumber": str(start + i), "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/ChatTable/stream/x",
        }
        for i in range(n)
    ]


def seqs(event):
    return [int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"]]


class FakeFunction:
    """Records every batch; `behaviour(batch_seqs, call_no)` returns a response or raises."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.calls: list[list[int]] = []

    def __call__(self, event):
        self.calls.append(seqs(event))
        return self.behaviour(self.calls[-1], len(self.calls))


def dispatcher(fn, tmp_path, **source_kw):
    source = tpl.StreamSource(function="StreamProcessorFunction", table="ChatTable", **{
        "report_batch_item_failures": True, "bisect_on_error": True, "max_retry_attempts": 2, **source_kw})
    return BatchDispatcher(fn, source, LocalDlq(tmp_path / "dlq.jsonl"), sleep=lambda s: None)


def test_success_is_one_invocation(tmp_path):
    fn = FakeFunction(lambda batch, n: {"batchItemFailures": []})
    d = dispatcher(fn, tmp_path)
    d.dispatch(records(5))
    assert fn.calls == [[100, 101, 102, 103, 104]]
    assert d.stats.records_succeeded == 5 and len(d.dlq) == 0


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": None}, "ok"])
def test_null_or_empty_response_is_success(tmp_path, response):
    fn = FakeFunction(lambda batch, n: response)
    d = dispatcher(fn, tmp_path)
    d.dispatch(records(3))
    assert len(fn.calls) == 1 and d.stats.records_succeeded == 3


def test_partial_failure_retries_from_the_lowest_failed_sequence_number(tmp_path):
    def behaviour(batch, n):
        if n == 1:
            return {"batchItemFailures": [{"itemIdentifier": "104"}, {"itemIdentifier": "102"}]}
        return {"batchItemFailures": []}

    fn = FakeFunction(behaviour)
    d = dispatcher(fn, tmp_path)
    d.dispatch(records(6))
    assert fn.calls == [[100, 101, 102, 103, 104, 105], [102, 103, 104, 105]]
    assert d.stats.records_succeeded == 6 and d.stats.partial_failures == 1


def test_function_error_bisects(tmp_path):
    # record 103 makes the function raise: halves are retried until it is isolated
    def behaviour(batch, n):
        if 103 in batch:
            raise RuntimeError("poison")
        return None

    fn = FakeFunction(behaviour)
    d = dispatcher(fn, tmp_path, max_retry_attempts=5)
    d.dispatch(records(8))
    assert fn.calls[0] == list(range(100, 108))
    assert fn.calls[1] == [100, 101, 102, 103]
    assert fn.calls[2] == [100, 101]  # the clean half of the failing half succeeds
    assert [103] in fn.calls
    assert d.stats.bisects >= 2
    # the poison record ends in the DLQ; every other record was delivered successfully
    assert d.stats.records_dead == 1 and d.stats.records_succeeded == 7
    dead = d.dlq.items[0]
    assert dead["DDBStreamBatchInfo"]["startSequenceNumber"] == "103"
    assert dead["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # records after the poison one are delivered after it (in order)
    first_after = next(i for i, c in enumerate(fn.calls) if c and c[0] >= 104)
    assert all(103 not in c for c in fn.calls[first_after:])


def test_no_bisect_retries_whole_batch_then_dlq(tmp_path):
    def behaviour(batch, n):
        raise RuntimeError("down")

    fn = FakeFunction(behaviour)
    d = dispatcher(fn, tmp_path, bisect_on_error=False, max_retry_attempts=2)
    d.dispatch(records(3))
    assert fn.calls == [[100, 101, 102]] * 3  # first try + 2 retries
    assert d.stats.records_dead == 3
    lines = (tmp_path / "dlq.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["DDBStreamBatchInfo"]["batchSize"] == 3


def test_partial_failure_exhausted_goes_to_dlq_from_the_failed_record(tmp_path):
    fn = FakeFunction(lambda batch, n: {"batchItemFailures": [{"itemIdentifier": str(batch[-1])}]})
    d = dispatcher(fn, tmp_path, max_retry_attempts=1)
    d.dispatch(records(4))
    assert fn.calls == [[100, 101, 102, 103], [103]]
    assert d.stats.records_dead == 1 and d.stats.records_succeeded == 3


@pytest.mark.parametrize("bad", [[{"itemIdentifier": ""}], [{"itemIdentifier": None}], [{"itemIdentifier": "999"}],
                                 [{"wrong": "101"}]])
def test_invalid_item_identifier_fails_the_whole_batch(tmp_path, bad):
    fn = FakeFunction(lambda batch, n: {"batchItemFailures": bad} if n == 1 else None)
    d = dispatcher(fn, tmp_path)
    d.dispatch(records(3))
    assert fn.calls == [[100, 101, 102], [100, 101, 102]]


@pytest.mark.parametrize("failures", [5, True, "101", {"itemIdentifier": "101"}, ["101"],
                                      [{"itemIdentifier": "101"}, {}]])
def test_given_a_malformed_batch_item_failures_response_when_dispatched_then_retried_then_dead_lettered(
    tmp_path, caplog, failures
):
    # Given: a function that always answers with a batchItemFailures that is not a list of
    # {"itemIdentifier": <a sequence number of the batch>}
    fn = FakeFunction(lambda batch, n: {"batchItemFailures": failures})
    d = dispatcher(fn, tmp_path, bisect_on_error=False, max_retry_attempts=2)
    # When
    d.dispatch(records(3))
    # Then: a failure of the whole batch: first try + 2 retries, then the DLQ; dispatch returns normally
    assert fn.calls == [[100, 101, 102]] * 3
    assert d.stats.records_dead == 3 and d.stats.records_succeeded == 0
    assert d.dlq.items[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert "malformed response" in caplog.text


def test_partial_response_ignored_without_report_batch_item_failures(tmp_path):
    fn = FakeFunction(lambda batch, n: {"batchItemFailures": [{"itemIdentifier": "100"}]})
    d = dispatcher(fn, tmp_path, report_batch_item_failures=False)
    d.dispatch(records(2))
    assert len(fn.calls) == 1 and d.stats.records_succeeded == 2


def test_records_older_than_maximum_age_are_not_delivered(tmp_path):
    recs = records(2)
    recs[0]["dynamodb"]["ApproximateCreationDateTime"] -= 7200
    fn = FakeFunction(lambda batch, n: None)
    d = dispatcher(fn, tmp_path, max_record_age_s=3600)
    d.dispatch(recs)
    assert fn.calls == [[101]]
    assert d.dlq.items[0]["requestContext"]["condition"] == "RecordAgeExceeded"


def test_given_a_record_reaching_its_maximum_age_during_the_check_when_dispatched_then_delivered_or_dead_never_both(
    tmp_path,
):
    # Given: 100 is already too old, 101 is 58 s old (limit 60 s), 102 is new, and the clock moves 1 s
    # each time it is read (time passes while the dispatcher looks at the batch)
    start = 1_000_000
    recs = records(3)
    for rec, age in zip(recs, (100, 58, 0), strict=True):
        rec["dynamodb"]["ApproximateCreationDateTime"] = start - age
    ticks = iter(range(start, start + 1000))
    fn = FakeFunction(lambda batch, n: None)
    d = BatchDispatcher(fn, tpl.StreamSource(function="StreamProcessorFunction", table="ChatTable",
                                             max_record_age_s=60),
                        LocalDlq(tmp_path / "dlq.jsonl"), sleep=lambda s: None, clock=lambda: next(ticks))
    # When
    d.dispatch(recs)
    # Then: every record went exactly one way, the too-old ones first, the others in order
    dead = [int(r["dynamodb"]["SequenceNumber"]) for item in d.dlq.items for r in item["records"]]
    delivered = [s for call in fn.calls for s in call]
    assert sorted(dead + delivered) == [100, 101, 102]
    assert dead == [100] and delivered == [101, 102]
    assert d.stats.records_dead + d.stats.records_succeeded == 3


# ------------------------------------------------------------------- real moto stream records + TTL


@pytest.fixture
def moto_app(tmp_path):
    template = tpl.load_template(write_sample_app(tmp_path))
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        # boto3 >= 1.40 sends StreamArn operations to an account-id endpoint
        # ({account}.streams-ddb.{region}.amazonaws.com) that moto does not route: turn that off.
        streams = boto3.client(
            "dynamodbstreams", region_name="us-east-1", config=Config(account_id_endpoint_mode="disabled")
        )
        tpl.create_tables(ddb, template)
        yield template, ddb, streams


def read_stream(streams, table="ChatTable"):
    arn = streams.list_streams(TableName=table)["Streams"][0]["StreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return arn, streams.get_records(ShardIterator=it)["Records"]


def test_lambda_record_shape_from_a_real_stream(moto_app):
    _, ddb, streams = moto_app
    ddb.put_item(TableName="ChatTable", Item={"pk": {"S": "a"}, "sk": {"S": "S"}, "n": {"N": "1"}})
    ddb.update_item(TableName="ChatTable", Key={"pk": {"S": "a"}, "sk": {"S": "S"}},
                    UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "2"}})
    arn, raw = read_stream(streams)
    recs = [to_lambda_record(r, table="ChatTable", stream_arn=arn) for r in raw]
    ins, mod = recs
    assert set(ins) == {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb",
                        "eventSourceARN"}
    assert ins["eventName"] == "INSERT" and mod["eventName"] == "MODIFY"
    assert ins["eventVersion"] == "1.1" and ins["eventSource"] == "aws:dynamodb"
    assert ins["eventSourceARN"] == arn and ins["awsRegion"] == "us-east-1"
    d = mod["dynamodb"]
    assert set(d) == {"ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber",
                      "SizeBytes", "StreamViewType"}
    assert isinstance(d["ApproximateCreationDateTime"], int)
    assert d["Keys"] == {"pk": {"S": "a"}, "sk": {"S": "S"}}
    assert d["OldImage"]["n"] == {"N": "1"} and d["NewImage"]["n"] == {"N": "2"}
    assert int(d["SequenceNumber"]) > int(ins["dynamodb"]["SequenceNumber"])
    json.dumps(recs)


def test_ttl_sweep_deletes_expired_items_and_marks_their_remove_records(moto_app):
    _, ddb, streams = moto_app
    now = 2_000_000_000
    items = {
        "expired": now - 10,
        "due-now": now,
        "future": now + 10,
        "ancient": now - 6 * 365 * 86400,  # more than 5 years old: DynamoDB TTL ignores it
    }
    for pk, ttl in items.items():
        ddb.put_item(TableName="ChatTable", Item={"pk": {"S": pk}, "sk": {"S": "S"}, "purge_at": {"N": str(ttl)}})
    ddb.put_item(TableName="ChatTable", Item={"pk": {"S": "string-ttl"}, "sk": {"S": "S"}, "purge_at": {"S": "1"}})
    ddb.put_item(TableName="ChatTable", Item={"pk": {"S": "api-deleted"}, "sk": {"S": "S"}})
    ddb.delete_item(TableName="ChatTable", Key={"pk": {"S": "api-deleted"}, "sk": {"S": "S"}})

    swept = SweptKeys()
    sweeper = TtlSweeper(ddb, {"ChatTable": "purge_at", "IdempotencyTable": "expiration"}, swept, lambda: now)
    assert sweeper.sweep_once() == 2
    left = {i["pk"]["S"] for i in ddb.scan(TableName="ChatTable")["Items"]}
    assert left == {"future", "ancient", "string-ttl"}

    arn, raw = read_stream(streams)
    recs = [to_lambda_record(r, table="ChatTable", stream_arn=arn, swept=swept) for r in raw]
    removes = {r["dynamodb"]["Keys"]["pk"]["S"]: r for r in recs if r["eventName"] == "REMOVE"}
    assert set(removes) == {"api-deleted", "expired", "due-now"}
    assert removes["expired"]["userIdentity"] == TTL_IDENTITY
    assert removes["due-now"]["userIdentity"] == TTL_IDENTITY
    assert "userIdentity" not in removes["api-deleted"]
    assert len(swept) == 0  # each annotation is used once
    assert all("userIdentity" not in r for r in recs if r["eventName"] != "REMOVE")


def test_sweep_skips_items_whose_ttl_moved_forward(moto_app):
    _, ddb, _ = moto_app
    ddb.put_item(TableName="ChatTable", Item={"pk": {"S": "x"}, "sk": {"S": "S"}, "purge_at": {"N": "100"}})
    swept = SweptKeys()

    class Racing:
        """Between the scan and the delete, the item's TTL is pushed forward (a new message)."""

        exceptions = ddb.exceptions

        def __getattr__(self, name):
            return getattr(ddb, name)

        def delete_item(self, **kw):
            ddb.update_item(TableName="ChatTable", Key=kw["Key"], UpdateExpression="SET purge_at = :t",
                            ExpressionAttributeValues={":t": {"N": "999999"}})
            return ddb.delete_item(**kw)

    sweeper = TtlSweeper(Racing(), {"ChatTable": "purge_at"}, swept, lambda: 200)
    assert sweeper.sweep_once() == 0
    assert len(swept) == 0
    assert ddb.get_item(TableName="ChatTable", Key={"pk": {"S": "x"}, "sk": {"S": "S"}}).get("Item")


def test_poller_batches_and_drains(moto_app, tmp_path):
    template, ddb, streams = moto_app
    source = tpl.stream_source(template)  # BatchSize 10, window 1 s
    batches = []
    d = BatchDispatcher(lambda e: batches.append(seqs(e)), source, LocalDlq(tmp_path / "d.jsonl"))
    poller = StreamPoller(streams, "ChatTable", source, d, poll_interval=0.05)
    assert poller.prime()
    poller.start()
    try:
        for i in range(25):
            ddb.put_item(TableName="ChatTable", Item={"pk": {"S": f"p{i}"}, "sk": {"S": "S"}})
        result = poller.drain(timeout=10)
        assert result["drained"] and result["records"] == 25
        assert [len(b) for b in batches] == [10, 10, 5]
        flat = [s for b in batches for s in b]
        assert flat == sorted(flat)
        assert poller.drain(timeout=5)["drained"]  # nothing new: returns at once
    finally:
        poller.stop()
        poller.join(timeout=5)


def test_given_ttl_deletes_between_two_polling_passes_when_drained_then_each_record_is_delivered_once(
    moto_app, tmp_path
):
    template, ddb, streams = moto_app
    source = tpl.stream_source(template)
    delivered = []
    d = BatchDispatcher(lambda e: delivered.extend(e["Records"]), source, LocalDlq(tmp_path / "d.jsonl"))
    swept = SweptKeys()
    poller = StreamPoller(streams, "ChatTable", source, d, swept=swept, poll_interval=0.05)
    assert poller.prime()
    poller.start()
    try:
        # Given: items delivered by a first pass, then removed by TTL before the next one
        for i in range(3):
            ddb.put_item(TableName="ChatTable",
                         Item={"pk": {"S": f"p{i}"}, "sk": {"S": "S"}, "purge_at": {"N": "100"}})
        assert poller.drain(timeout=10)["drained"]
        assert TtlSweeper(ddb, {"ChatTable": "purge_at"}, swept, lambda: 200).sweep_once() == 3
        # When
        assert poller.drain(timeout=10)["drained"]
        assert poller.drain(timeout=10)["drained"]
        # Then: every change once, in stream order, the REMOVEs as TTL deletes
        numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in delivered]
        assert numbers == sorted(set(numbers)) and len(numbers) == 6
        assert [r["eventName"] for r in delivered] == ["INSERT"] * 3 + ["REMOVE"] * 3
        assert all(r["userIdentity"] == TTL_IDENTITY for r in delivered[3:])
    finally:
        poller.stop()
        poller.join(timeout=5)


def cancelled_transaction(ddb):
    """A TransactWriteItems whose condition fails. moto rolls it back by putting a deep copy of the
    table back in place, stream shard included: same ShardId, a new object."""
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "ChatTable", "Item": {"pk": {"S": "tx"}, "sk": {"S": "S"}}}},
            {"ConditionCheck": {"TableName": "ChatTable", "Key": {"pk": {"S": "missing"}, "sk": {"S": "S"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
        ])


def test_poller_keeps_reading_after_moto_replaces_the_shard(moto_app, tmp_path):
    """Regression: after a cancelled transaction (any 404/409 of the API does one), the poller's shard
    iterator pointed at the discarded shard copy: every later record was never seen, invocations stayed
    0, and drain() still said drained."""
    template, ddb, streams = moto_app
    source = tpl.stream_source(template)
    batches = []
    d = BatchDispatcher(lambda e: batches.append(seqs(e)), source, LocalDlq(tmp_path / "d.jsonl"))
    poller = StreamPoller(streams, "ChatTable", source, d, poll_interval=0.05)
    assert poller.prime()
    poller.start()
    try:
        ddb.put_item(TableName="ChatTable", Item={"pk": {"S": "before"}, "sk": {"S": "S"}})
        assert poller.drain(timeout=10)["records"] == 1
        cancelled_transaction(ddb)
        for i in range(3):
            ddb.put_item(TableName="ChatTable", Item={"pk": {"S": f"after{i}"}, "sk": {"S": "S"}})
        cancelled_transaction(ddb)
        ddb.put_item(TableName="ChatTable", Item={"pk": {"S": "last"}, "sk": {"S": "S"}})
        result = poller.drain(timeout=10)
        assert result["drained"] and result["records"] == 5 and result["records_succeeded"] == 5
        flat = [s for b in batches for s in b]
        assert flat == sorted(flat) and len(set(flat)) == 5
        assert poller.error is None and poller.is_alive()
    finally:
        poller.stop()
        poller.join(timeout=5)


class FlakyStreams:
    """A dynamodbstreams client whose get_records fails while `failing` is set."""

    def __init__(self, client):
        self.client = client
        self.failing = False

    def __getattr__(self, name):
        return getattr(self.client, name)

    def get_records(self, **kw):
        if self.failing:
            raise ConnectionError("stream endpoint down")
        return self.client.get_records(**kw)


def test_poller_survives_errors_reports_them_and_drain_stays_honest(moto_app, tmp_path):
    template, ddb, streams = moto_app
    source = tpl.stream_source(template)
    batches = []

    def fn(event):
        batches.append(seqs(event))
        if len(batches) == 1:
            raise SystemExit(1)  # a handler calling sys.exit(): a function error, not the poller's end

    d = BatchDispatcher(fn, source, LocalDlq(tmp_path / "d.jsonl"), sleep=lambda s: None)
    flaky = FlakyStreams(streams)
    poller = StreamPoller(flaky, "ChatTable", source, d, poll_interval=0.05)
    assert poller.prime()
    flaky.failing = True  # before start: a read already in flight when it is set could return the record
    poller.start()
    try:
        ddb.put_item(TableName="ChatTable", Item={"pk": {"S": "a"}, "sk": {"S": "S"}})
        result = poller.drain(timeout=1)
        assert not result["drained"] and result["records"] == 0 and result["errors"] >= 1
        assert poller.is_alive() and "stream endpoint down" in poller.error
        assert "stream endpoint down" in poller.last_error["error"] and poller.last_error["count"] >= 1
        flaky.failing = False
        result = poller.drain(timeout=10)
        assert result["drained"] and result["records"] == 1 and result["records_succeeded"] == 1
        assert result["function_errors"] == 1 and len(batches) == 2
        assert poller.error is None and "stream endpoint down" in poller.last_error["error"]  # kept
    finally:
        poller.stop()
        poller.join(timeout=5)


class DlqFileFailingOnce(LocalDlq):
    """A DLQ whose first write fails (its file is a directory), as on a full or read-only disk."""

    def __init__(self, path):
        super().__init__(path)
        self.path.mkdir()

    def send(self, message):
        try:
            super().send(message)
        finally:
            if self.path.is_dir():
                self.path.rmdir()  # the disk is fixed: the next write works


@pytest.mark.parametrize("failing", ["dlq-file", "record-events-file"])
def test_given_a_file_write_failing_after_part_of_a_batch_was_delivered_when_drained_then_none_is_sent_twice(
    moto_app, tmp_path, failing
):
    template, ddb, streams = moto_app
    source = dataclasses.replace(tpl.stream_source(template), max_retry_attempts=1, bisect_on_error=False)
    batches = []

    def fn(event):
        # p0 and p1 succeed; p2 fails for ever (reported), so p2 and p3 end in the DLQ
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        batches.append(keys)
        if "p2" in keys:
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][keys.index("p2")]["dynamodb"]
                                           ["SequenceNumber"]}]}
        return None

    events = []

    def on_event(event):
        events.append(event)
        if failing == "record-events-file" and len(events) == 2:  # the retry of p2, p3
            raise OSError("record-events: no space left on device")

    if failing == "dlq-file":
        dlq = DlqFileFailingOnce(tmp_path / "d.jsonl")
    else:
        dlq = LocalDlq(tmp_path / "d.jsonl")
    d = BatchDispatcher(fn, source, dlq, on_event=on_event, sleep=lambda s: None)
    poller = StreamPoller(streams, "ChatTable", source, d, poll_interval=0.05)
    assert poller.prime()
    poller.start()
    try:
        # Given: a batch whose first two records are delivered before the write fails
        for i in range(4):
            ddb.put_item(TableName="ChatTable", Item={"pk": {"S": f"p{i}"}, "sk": {"S": "S"}})
        # When
        result = poller.drain(timeout=10)
        # Then: the poller went on after the error, and each record went one way, once
        assert result["drained"] and poller.error is None and poller.last_error is not None
        assert [k for b in batches for k in b].count("p0") == 1
        assert [k for b in batches for k in b].count("p1") == 1
        assert result["records_succeeded"] == 2
        assert [[r["dynamodb"]["Keys"]["pk"]["S"] for r in m["records"]] for m in dlq.items] == [["p2", "p3"]]
        assert len(dlq.path.read_text().splitlines()) == 1
    finally:
        poller.stop()
        poller.join(timeout=5)


def test_latest_starts_after_the_records_already_in_the_stream(moto_app, tmp_path):
    template, ddb, streams = moto_app
    source = dataclasses.replace(tpl.stream_source(template), starting_position="LATEST")
    ddb.put_item(TableName="ChatTable", Item={"pk": {"S": "old"}, "sk": {"S": "S"}})
    batches = []
    d = BatchDispatcher(lambda e: batches.append([r["dynamodb"]["Keys"]["pk"]["S"] for r in e["Records"]]),
                        source, LocalDlq(tmp_path / "d.jsonl"))
    poller = StreamPoller(streams, "ChatTable", source, d, poll_interval=0.05)
    assert poller.prime()
    poller.start()
    try:
        ddb.put_item(TableName="ChatTable", Item={"pk": {"S": "new"}, "sk": {"S": "S"}})
        assert poller.drain(timeout=10)["drained"]
        assert batches == [["new"]]
    finally:
        poller.stop()
        poller.join(timeout=5)
