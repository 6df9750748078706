"""chatkeep_local.queues, .sqs_poller and .moto_sqs: the template's queues on the embedded moto SQS, and the
SQS -> Lambda event source mapping (event shape, partial batch responses, retries, redrive to the DLQ,
visibility timeout, concurrency cap) driving handlers loaded as the local runtime loads them."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid

import boto3
import pytest
from chatkeep_local import moto_sqs
from chatkeep_local import template as tpl
from chatkeep_local.lambda_runtime import FunctionInvoker
from chatkeep_local.queues import LocalQueues, queues, sqs_sources
from chatkeep_local.sqs_poller import SqsPoller, failed_message_ids, to_lambda_record

TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Parameters:
  Suffix:
    Type: String
    Default: t
  WorkerConcurrency:
    Type: Number
    Default: 2
Globals:
  Function:
    Runtime: python3.13
    Handler: app.lambda_handler
    Timeout: 1
Resources:
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub work-${Suffix}
      VisibilityTimeout: 1
      MessageRetentionPeriod: 3600
      KmsMasterKeyId: !ImportValue not-known-locally
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDlq.Arn
        maxReceiveCount: 2
  WorkDlq:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub work-dlq-${Suffix}
  BatchQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub batch-${Suffix}
      VisibilityTimeout: 5
  SlowQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub slow-${Suffix}
      VisibilityTimeout: 10
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker
      Environment:
        Variables:
          WORK_QUEUE_URL: !Ref WorkQueue
          WORK_QUEUE_ARN: !GetAtt WorkQueue.Arn
          WORK_QUEUE_NAME: !GetAtt WorkQueue.QueueName
          WORK_DLQ_URL: !GetAtt WorkDlq.QueueUrl
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
  BatchWorker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker
      Events:
        Batch:
          Type: SQS
          Properties:
            Queue: !GetAtt BatchQueue.Arn
            BatchSize: 10
            MaximumBatchingWindowInSeconds: 1
  SlowWorker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/slow
      Timeout: 10
      Events:
        Slow:
          Type: SQS
          Properties:
            Queue: !GetAtt SlowQueue.Arn
            BatchSize: 1
            ScalingConfig:
              MaximumConcurrency: !Ref WorkerConcurrency
"""

WORKER = '''\
import json
import time

EVENTS = []  # (monotonic time, event)


def lambda_handler(event, context):
    EVENTS.append((time.monotonic(), event))
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        attempt = int(record["attributes"]["ApproximateReceiveCount"])
        if body.get("raise"):
            raise RuntimeError("boom")
        if attempt <= body.get("fail_times", 0):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
'''

SLOW = '''\
import threading

LOCK = threading.Lock()
RELEASE = threading.Event()
STATE = {"active": 0, "peak": 0, "done": 0}


def lambda_handler(event, context):
    with LOCK:
        STATE["active"] += 1
        STATE["peak"] = max(STATE["peak"], STATE["active"])
    RELEASE.wait(8)
    with LOCK:
        STATE["active"] -= 1
        STATE["done"] += 1
'''


def write_app(root, template=TEMPLATE):
    for name, code in (("worker", WORKER), ("slow", SLOW)):
        (root / "functions" / name).mkdir(parents=True, exist_ok=True)
        (root / "functions" / name / "app.py").write_text(code, encoding="utf-8")
    path = root / "template.yaml"
    path.write_text(template, encoding="utf-8")
    return tpl.load_template(path)


def wait_until(predicate, timeout=8.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# ------------------------------------------------------------------------------- template (no SQS)


def test_given_queues_in_the_template_when_functions_are_read_then_ref_and_getatt_give_the_queue_url_arn_name(
    tmp_path,
):
    env = tpl.functions(write_app(tmp_path), {"Suffix": "abc"})["Worker"].environment
    assert env["WORK_QUEUE_URL"] == "https://sqs.us-east-1.amazonaws.com/123456789012/work-abc"
    assert env["WORK_QUEUE_ARN"] == "arn:aws:sqs:us-east-1:123456789012:work-abc"
    assert env["WORK_QUEUE_NAME"] == "work-abc"
    assert env["WORK_DLQ_URL"] == "https://sqs.us-east-1.amazonaws.com/123456789012/work-dlq-abc"


def test_given_queues_when_read_then_create_queue_arguments_with_the_redrive_target_resolved(tmp_path):
    specs = queues(write_app(tmp_path), {"Suffix": "abc"})
    work = specs["WorkQueue"]
    assert work.name == "work-abc" and work.dead_letter_queue == "WorkDlq" and work.max_receive_count == 2
    assert work.attributes == {
        "MessageRetentionPeriod": "3600",
        "VisibilityTimeout": "1",
        "RedrivePolicy": '{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:work-dlq-abc",'
                         '"maxReceiveCount":2}',
    }  # KmsMasterKeyId (unresolvable locally) is neither read nor resolved
    assert specs["WorkDlq"].attributes == {} and specs["WorkDlq"].visibility_timeout_s == 30


def test_given_a_queue_without_queuename_then_its_name_is_its_logical_id_and_fifo_ends_in_dot_fifo(tmp_path):
    text = TEMPLATE + """\
  Plain:
    Type: AWS::SQS::Queue
  Ordered:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
"""
    specs = queues(write_app(tmp_path, text))
    assert specs["Plain"].name == "Plain" and specs["Plain"].url.endswith("/123456789012/Plain")
    assert specs["Ordered"].name == "Ordered.fifo" and specs["Ordered"].attributes == {"FifoQueue": "true"}


def test_given_sqs_events_when_read_then_the_mapping_settings_are_those_declared(tmp_path):
    sources = {s.function: s for s in sqs_sources(write_app(tmp_path), {"WorkerConcurrency": "3"})}
    work, batch, slow = sources["Worker"], sources["BatchWorker"], sources["SlowWorker"]
    assert (work.queue, work.batch_size, work.max_batching_window_s, work.report_batch_item_failures) == (
        "WorkQueue", 10, 0, True)
    assert work.concurrency == 5  # no cap declared: the local default
    assert (batch.max_batching_window_s, batch.report_batch_item_failures) == (1, False)
    assert (slow.batch_size, slow.maximum_concurrency, slow.concurrency) == (1, 3, 3)


def test_given_reserved_concurrency_then_it_caps_the_mapping_too(tmp_path):
    text = TEMPLATE.replace("    Timeout: 1\n", "    Timeout: 1\n    ReservedConcurrentExecutions: 1\n", 1)
    sources = {s.function: s for s in sqs_sources(write_app(tmp_path, text))}
    assert sources["Worker"].concurrency == 1 and sources["SlowWorker"].concurrency == 1  # min(2, 1)


def test_given_an_sqs_event_on_something_not_a_template_queue_then_it_is_refused(tmp_path):
    text = TEMPLATE.replace("Queue: !GetAtt WorkQueue.Arn", "Queue: !GetAtt Worker.Arn")
    with pytest.raises(ValueError, match="is not a queue of the template"):
        sqs_sources(write_app(tmp_path, text))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("Timeout: 10\n      Events:\n        Slow:", "Timeout: 11\n      Events:\n        Slow:"),
         "Queue visibility timeout: 10 seconds is less than Function timeout: 11 seconds"),
        (("BatchSize: 1\n", "BatchSize: 11\n"), "a BatchSize over 10 needs MaximumBatchingWindowInSeconds"),
        (("Default: 2", "Default: 1"), "ScalingConfig.MaximumConcurrency 1 is not between 2 and 1000"),
    ],
)
def test_given_a_mapping_lambda_would_refuse_when_the_runtime_reads_it_then_it_refuses_to_start(
    tmp_path, change, message
):
    template = write_app(tmp_path, TEMPLATE.replace(*change))
    with pytest.raises(ValueError, match=message):
        LocalQueues(template, tpl.functions(template))


# ------------------------------------------------------------------------------- responses (no SQS)


@pytest.mark.parametrize("response", [None, {}, "ok", [], {"batchItemFailures": None}, {"batchItemFailures": []}])
def test_given_an_empty_or_null_response_then_the_whole_batch_succeeded(response):
    assert failed_message_ids(response, ["m1", "m2"]) == set()


@pytest.mark.parametrize(
    "failures",
    ["m1", {"itemIdentifier": "m1"}, [{"itemIdentifier": ""}], [{"itemIdentifier": None}], [{"id": "m1"}],
     [{"itemIdentifier": "not-in-batch"}], ["m1"]],
)
def test_given_a_malformed_batch_item_failures_then_the_whole_batch_failed(failures):
    assert failed_message_ids({"batchItemFailures": failures}, ["m1", "m2"]) is None


def test_given_named_failures_then_only_those_failed():
    assert failed_message_ids({"batchItemFailures": ({"itemIdentifier": "m2"},)}, ["m1", "m2"]) == {"m2"}


def exits(event):
    raise SystemExit(3)


def fake_message(i):
    return {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": "{}", "MD5OfBody": "x",
            "Attributes": {"ApproximateReceiveCount": "1"}}


@pytest.mark.parametrize(
    ("report", "behaviour", "failed"),
    [
        (False, lambda e: {"batchItemFailures": [{"itemIdentifier": "m0"}]}, set()),  # ignored without the setting
        (True, lambda e: {"batchItemFailures": [{"itemIdentifier": "m0"}]}, {"m0"}),
        (True, lambda e: 1 / 0, {"m0", "m1"}),  # function error
        (True, lambda e: {"not": {"json", "serialisable"}}, {"m0", "m1"}),  # Runtime.MarshalError
        (True, exits, {"m0", "m1"}),  # sys.exit() in a handler
    ],
)
def test_given_a_function_outcome_then_the_messages_left_in_the_queue_are_those_lambda_leaves(
    report, behaviour, failed
):
    poller = SqsPoller(None, function="F", queue_url="https://x/1/q", queue_arn="arn:q", invoke=behaviour,
                       report_batch_item_failures=report)
    assert poller._invoke([fake_message(0), fake_message(1)]) == failed


# ------------------------------------------------------------------------------ on the moto server


@pytest.fixture(scope="module")
def sqs_endpoint():
    from moto.server import ThreadedMotoServer

    moto_sqs.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class App:
    """The test template on the moto server, under queue names of its own (one App per test)."""

    def __init__(self, root, endpoint, **overrides):
        self.overrides = {"Suffix": uuid.uuid4().hex[:10], **overrides}
        self.template = write_app(root)
        self.functions = tpl.functions(self.template, self.overrides)
        self.invokers = {lid: FunctionInvoker(spec) for lid, spec in self.functions.items()}
        self.queues = LocalQueues(self.template, self.functions, self.overrides)
        self.endpoint = endpoint
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        self.events = []

    def create(self):
        self.queues.create(self.endpoint)
        return self

    def start(self):
        self.queues.start(self.endpoint, self.invokers, on_event=lambda e, fn: self.events.append((fn, e)),
                          long_poll_s=1)
        return self

    def url(self, logical_id):
        return self.queues.specs[logical_id].url

    def module(self, function):
        return self.invokers[function].handler().__globals__

    def send(self, logical_id, *bodies):
        entries = [{"Id": str(i), "MessageBody": json.dumps(b)} for i, b in enumerate(bodies)]
        resp = self.sqs.send_message_batch(QueueUrl=self.url(logical_id), Entries=entries)
        return [e["MessageId"] for e in sorted(resp["Successful"], key=lambda e: int(e["Id"]))]

    def receive_all(self, logical_id):
        resp = self.sqs.receive_message(QueueUrl=self.url(logical_id), MaxNumberOfMessages=10,
                                        MessageSystemAttributeNames=["All"])
        return resp.get("Messages") or []

    def drain(self):
        result = self.queues.drain(timeout=10)
        assert result["drained"], result
        return result

    def poller(self, function):
        return next(p for p in self.queues.pollers if p.function == function)


@pytest.fixture
def app(tmp_path, sqs_endpoint):
    made = []

    def make(**overrides):
        made.append(App(tmp_path, sqs_endpoint, **overrides))
        return made[-1]

    yield make
    for a in made:
        a.queues.stop()


def test_given_the_template_when_started_then_its_queues_exist_with_their_attributes_and_redrive(app):
    a = app().start()
    attrs = a.sqs.get_queue_attributes(QueueUrl=a.url("WorkQueue"), AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "1" and attrs["MessageRetentionPeriod"] == "3600"
    assert json.loads(attrs["RedrivePolicy"]) == {
        "deadLetterTargetArn": a.queues.specs["WorkDlq"].arn, "maxReceiveCount": 2}
    assert attrs["QueueArn"] == a.functions["Worker"].environment["WORK_QUEUE_ARN"]
    assert [p.function for p in a.queues.pollers] == ["Worker", "BatchWorker", "SlowWorker"]


def test_given_a_message_sent_to_the_env_queue_url_when_polled_then_the_handler_gets_lambdas_sqs_event(app):
    a = app().start()
    url = a.functions["Worker"].environment["WORK_QUEUE_URL"]  # what the product's sqs client is given
    sent = a.sqs.send_message(QueueUrl=url, MessageBody='{"turn": 1}', MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "turn"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        "n": {"DataType": "Number", "StringValue": "7"},
    })
    a.drain()
    [(_, event)] = a.module("Worker")["EVENTS"]
    [record] = event["Records"]
    assert list(record) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                            "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion"]
    assert record["messageId"] == sent["MessageId"] and record["receiptHandle"]
    assert record["body"] == '{"turn": 1}'
    assert record["md5OfBody"] == hashlib.md5(b'{"turn": 1}').hexdigest()  # noqa: S324 - SQS's checksum
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    attrs = record["attributes"]
    assert list(attrs)[:4] == ["ApproximateReceiveCount", "SentTimestamp", "SenderId",
                               "ApproximateFirstReceiveTimestamp"]
    assert attrs["ApproximateReceiveCount"] == "1" and attrs["SentTimestamp"].isdigit() and attrs["SenderId"]
    assert int(attrs["ApproximateFirstReceiveTimestamp"]) >= int(attrs["SentTimestamp"])
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "turn", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        "n": {"stringValue": "7", "stringListValues": [], "binaryListValues": [], "dataType": "Number"},
    }
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs", a.functions["Worker"].environment["WORK_QUEUE_ARN"], "us-east-1")
    assert a.events == [("Worker", event)]  # what `--record-events` writes
    assert a.receive_all("WorkQueue") == []  # a success deletes the batch
    assert a.poller("Worker").counters()["messages_deleted"] == 1


def test_given_a_partial_batch_failure_then_only_the_failed_message_comes_back_after_the_visibility_timeout(app):
    a = app().create()
    ids = a.send("WorkQueue", {"n": 1}, {"n": 2, "fail_times": 1}, {"n": 3})  # queued before polling starts
    a.start()
    a.drain()
    (t1, first), (t2, second) = a.module("Worker")["EVENTS"]
    assert [r["messageId"] for r in first["Records"]] == ids  # one batch
    [again] = second["Records"]  # the two others were deleted
    assert again["messageId"] == ids[1] and again["attributes"]["ApproximateReceiveCount"] == "2"
    assert t2 - t1 >= 0.95  # hidden for the queue's VisibilityTimeout (1 s), not retried at once
    counters = a.poller("Worker").counters()
    assert (counters["invocations"], counters["messages_deleted"], counters["partial_failures"]) == (2, 3, 1)
    assert a.receive_all("WorkDlq") == []


def test_given_a_handler_that_raises_then_the_batch_is_retried_until_max_receive_count_then_in_the_dlq(app):
    a = app().create()
    [poison] = a.send("WorkQueue", {"raise": True})
    a.start()
    a.drain()  # drained once redrive has moved the message out of the queue
    events = [e for _, e in a.module("Worker")["EVENTS"]]
    assert [r["attributes"]["ApproximateReceiveCount"] for e in events for r in e["Records"]] == ["1", "2"]
    [dead] = a.receive_all("WorkDlq")
    assert dead["MessageId"] == poison and json.loads(dead["Body"]) == {"raise": True}
    counters = a.poller("Worker").counters()
    assert (counters["function_errors"], counters["messages_deleted"], counters["messages_failed"]) == (2, 0, 2)
    assert counters["messages_to_dlq"] == 1


def test_given_messages_arriving_within_the_batching_window_then_they_are_one_invocation(app):
    a = app().start()
    for n in range(3):
        a.send("BatchQueue", {"n": n})
        time.sleep(0.1)  # arrivals spread inside the 1 s window
    a.drain()
    [(_, event)] = a.module("BatchWorker")["EVENTS"]
    assert [json.loads(r["body"])["n"] for r in event["Records"]] == [0, 1, 2]


def test_given_maximum_concurrency_2_then_two_batches_run_at_once_and_the_rest_wait_visible_in_the_queue(app):
    a = app().start()
    state, release = a.module("SlowWorker")["STATE"], a.module("SlowWorker")["RELEASE"]
    a.send("SlowQueue", *({"n": n} for n in range(5)))
    assert wait_until(lambda: state["active"] == 2)
    attrs = a.sqs.get_queue_attributes(QueueUrl=a.url("SlowQueue"), AttributeNames=["All"])["Attributes"]
    # Both slots busy: the poller receives nothing more (no message waits hidden behind a busy function).
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("3", "2")
    release.set()
    a.drain()
    assert state == {"active": 0, "peak": 2, "done": 5}
    assert a.poller("SlowWorker").counters()["peak_concurrency"] == 2


def test_given_long_invocations_then_other_queues_are_still_served(app):
    a = app().start()
    state, release = a.module("SlowWorker")["STATE"], a.module("SlowWorker")["RELEASE"]
    try:
        a.send("SlowQueue", {"n": 1}, {"n": 2})
        assert wait_until(lambda: state["active"] == 2)
        a.send("WorkQueue", {"n": 3})
        assert wait_until(lambda: len(a.module("Worker")["EVENTS"]) == 1)
    finally:
        release.set()
    a.drain()


# --------------------------------------------------------------------------------------- moto_sqs


def test_given_concurrent_sends_and_deletes_then_no_message_is_lost(app):
    a = app().create()  # no poller: the test consumes the queue itself
    url, sent, received = a.url("WorkDlq"), 4 * 30, set()

    def producer(p):
        sqs = boto3.client("sqs", endpoint_url=a.endpoint, region_name="us-east-1")
        for i in range(0, 30, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(j), "MessageBody": f"{p}-{i + j}"} for j in range(10)])

    threads = [threading.Thread(target=producer, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(received) < sent and time.monotonic() < deadline:
        msgs = a.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages") or []
        received.update(m["Body"] for m in msgs)
        if msgs:
            a.sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    for t in threads:
        t.join()
    assert len(received) == sent


def test_given_a_message_past_the_retention_period_then_it_is_deleted_not_delivered(app):
    from moto.sqs.models import sqs_backends

    a = app().create()  # no poller
    a.send("WorkQueue", {"old": True})
    queue = sqs_backends["123456789012"]["us-east-1"].get_queue(a.queues.specs["WorkQueue"].name)
    queue._messages[0].sent_timestamp -= 3601 * 1000  # sent before the queue's 3600 s retention period
    assert a.receive_all("WorkQueue") == []
    assert a.sqs.get_queue_attributes(QueueUrl=a.url("WorkQueue"), AttributeNames=["All"])["Attributes"][
        "ApproximateNumberOfMessagesNotVisible"] == "0"


def test_lambda_record_of_a_message_without_attributes():
    record = to_lambda_record(fake_message(1), queue_arn="arn:aws:sqs:us-east-1:123456789012:q")
    assert record["messageAttributes"] == {} and "md5OfMessageAttributes" not in record


def _slow_poller(function_timeout_s: float | None) -> SqsPoller:
    def invoke(event: dict) -> dict:
        time.sleep(0.05)  # longer than the Timeout below: a wait for a free environment, or the function itself
        return {"batchItemFailures": []}

    return SqsPoller(None, function="Worker", queue_url="http://q/000000000000/work",
                     queue_arn="arn:aws:sqs:us-east-1:000000000000:work", invoke=invoke,
                     function_timeout_s=function_timeout_s)


MESSAGE = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}", "Attributes": {}, "MD5OfBody": "x"}


def test_given_an_invoker_that_cannot_stop_a_function_when_a_batch_runs_past_the_timeout_then_it_stays_queued():
    assert _slow_poller(function_timeout_s=0.01)._invoke([MESSAGE]) == {"m1"}


def test_given_environments_that_stop_a_function_themselves_when_a_batch_took_long_then_it_is_deleted():
    # the time may have gone in waiting for a free environment: only the environment's own timeout fails a batch
    assert _slow_poller(function_timeout_s=None)._invoke([MESSAGE]) == set()
