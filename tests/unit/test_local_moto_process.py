"""chatkeep_local.moto_process: moto (DynamoDB, Streams, SQS) in a process of its own, patched as in the runtime,
pruning its shard iterators, gone when its parent is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from chatkeep_local.moto_process import MotoProcess, MotoProcessError, prune_shard_iterators

ONE_ATTEMPT = Config(account_id_endpoint_mode="disabled", retries={"max_attempts": 1, "mode": "standard"})
LOCAL = str(Path(__file__).resolve().parents[2] / "local")


def clients(endpoint: str) -> tuple:
    kw = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    return boto3.client("dynamodb", **kw), boto3.client("dynamodbstreams", config=ONE_ATTEMPT, **kw), \
        boto3.client("sqs", **kw)


def stream_table(ddb, streams, name: str) -> tuple[str, str]:
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    arn = streams.list_streams(TableName=name)["Streams"][0]["StreamArn"]
    return arn, streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]


def trim_horizon(streams, arn: str, shard: str) -> str:
    return streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().count("State:\tZ") == 1  # exited, not yet reaped
    except FileNotFoundError:
        return True


def wait_for(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture(scope="module")
def moto():
    process = MotoProcess().start()
    process.wait_ready()
    yield process
    process.stop()


def test_given_the_moto_process_when_a_transaction_is_cancelled_then_the_stream_has_only_what_was_written(moto):
    # Unpatched moto puts the cancelled transaction's Put in the stream and swaps the table (and its stream shard)
    # for a copy, so a reader holding an iterator never sees the next write: here ['a', 'b'] instead of ['a', 'c'].
    ddb, streams, _ = clients(moto.endpoint_url)
    arn, shard = stream_table(ddb, streams, "txn")
    iterator = trim_horizon(streams, arn, shard)
    ddb.put_item(TableName="txn", Item={"pk": {"S": "a"}})
    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "txn", "Item": {"pk": {"S": "b"}}}},
            {"ConditionCheck": {"TableName": "txn", "Key": {"pk": {"S": "a"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}}])
    ddb.put_item(TableName="txn", Item={"pk": {"S": "c"}})

    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["a", "c"]


def test_given_the_moto_process_then_sqs_sends_receives_and_deletes(moto):
    _, _, sqs = clients(moto.endpoint_url)
    url = sqs.create_queue(QueueName="moto-process-q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert message["Body"] == "hello"
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_given_a_prune_interval_then_the_process_keeps_only_the_newest_shard_iterators():
    process = MotoProcess(["--prune-interval", "0.1", "--keep-iterators", "2"]).start()
    try:
        ddb, streams, _ = clients(process.wait_ready())
        arn, shard = stream_table(ddb, streams, "prune")
        ddb.put_item(TableName="prune", Item={"pk": {"S": "a"}})
        iterators = [trim_horizon(streams, arn, shard) for _ in range(5)]

        def oldest_pruned() -> bool:
            try:  # (a GetRecords that succeeds hands out one more iterator: its NextShardIterator)
                streams.get_records(ShardIterator=iterators[0])
            except ClientError:
                return True
            return False

        assert wait_for(oldest_pruned)
        newest = trim_horizon(streams, arn, shard)
        assert len(streams.get_records(ShardIterator=newest)["Records"]) == 1
    finally:
        process.stop()


def test_prune_shard_iterators_in_process_keeps_the_newest():
    from moto import mock_aws
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        streams = boto3.client("dynamodbstreams", region_name="us-east-1", config=ONE_ATTEMPT)
        arn, shard = stream_table(ddb, streams, "inproc")
        ddb.put_item(TableName="inproc", Item={"pk": {"S": "a"}})
        its = [trim_horizon(streams, arn, shard) for _ in range(5)]
        prune_shard_iterators(keep=2)
        assert list(dynamodbstreams_backends["123456789012"]["us-east-1"].shard_iterators) == its[-2:]
        assert len(streams.get_records(ShardIterator=its[-1])["Records"]) == 1


def test_given_stop_then_the_process_exits_at_the_end_of_its_stdin():
    process = MotoProcess().start()
    process.wait_ready()
    process.stop()
    assert process.process is not None and process.process.returncode == 0
    assert process.status()["alive"] is False


def test_given_its_parent_is_killed_then_the_moto_process_exits():
    parent = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", "import sys, time\nfrom chatkeep_local.moto_process import MotoProcess\n"
         "m = MotoProcess().start(); m.wait_ready(); print(m.process.pid, flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": LOCAL},
    )
    try:
        child = int(parent.stdout.readline())
        assert not gone(child)
        os.kill(parent.pid, signal.SIGKILL)  # no shutdown code runs: only the closed pipe tells the child
        parent.wait(timeout=10)
        assert wait_for(lambda: gone(child))
    finally:
        if parent.poll() is None:
            parent.kill()


def test_given_a_moto_process_that_fails_at_start_then_the_error_names_its_exit_code_and_stderr():
    process = MotoProcess(["--keep-iterators", "many"]).start()
    with pytest.raises(MotoProcessError) as failed:
        process.wait_ready()
    assert "exited with code 2" in str(failed.value)
    assert "invalid int value: 'many'" in str(failed.value)
