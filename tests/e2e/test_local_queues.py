"""`chatkeep dev` with SQS queues and an SQS-triggered function in the template: the queues exist on the
embedded moto, the function gets their URLs and an SQS endpoint its own boto3 uses, the trigger delivers,
retries and dead-letters, and /_local/queues reports it."""

from __future__ import annotations

import json

import boto3
import pytest
from chatkeep_local.testing import LocalApiProcess

pytestmark = pytest.mark.e2e

TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    Handler: app.lambda_handler
    Timeout: 1
Resources:
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDlq.Arn
        maxReceiveCount: 2
  WorkDlq:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker
      Environment:
        Variables:
          WORK_QUEUE_URL: !Ref WorkQueue
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            FunctionResponseTypes: [ReportBatchItemFailures]
"""

WORKER = '''\
import json
import os

import boto3


def lambda_handler(event, context):
    for record in event["Records"]:
        body = json.loads(record["body"])
        if body.get("raise"):
            raise RuntimeError("boom")
        if body.get("forward"):  # the product's way: boto3's sqs client, the URL from the environment
            boto3.client("sqs").send_message(QueueUrl=os.environ["WORK_QUEUE_URL"], MessageBody='{"forwarded": 1}')
        with open(os.environ["QUEUE_LOG"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\\n")
    return {"batchItemFailures": []}
'''


@pytest.fixture(scope="module")
def queue_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("queue-app")
    (root / "functions" / "worker").mkdir(parents=True)
    (root / "functions" / "worker" / "app.py").write_text(WORKER, encoding="utf-8")
    (root / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    api = LocalApiProcess(root / "template.yaml", log_path=root / "dev.log", env={"QUEUE_LOG": str(root / "q.log")},
                          extra_args=["--record-events", str(root / "events")])
    api.root = root  # type: ignore[attr-defined]
    api.start()
    try:
        yield api
    finally:
        api.stop()


def sqs(status):
    return boto3.client("sqs", endpoint_url=status["endpoint"], region_name="us-east-1")


def delivered(api):
    path = api.root / "q.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_given_queues_in_the_template_when_dev_starts_then_they_exist_and_the_function_is_polled(queue_api):
    status = queue_api.health()["queues"]
    assert status["enabled"] and set(status["queues"]) == {"WorkQueue", "WorkDlq"}
    assert status["queues"]["WorkQueue"]["url"] == "https://sqs.us-east-1.amazonaws.com/123456789012/WorkQueue"
    [poller] = status["pollers"]
    assert (poller["function"], poller["queue"], poller["alive"]) == ("Worker", "WorkQueue", True)


def test_given_a_message_when_drained_then_delivered_and_what_the_handler_sent_with_boto3_too(queue_api):
    status = queue_api.health()["queues"]
    sent = sqs(status).send_message(QueueUrl=status["queues"]["WorkQueue"]["url"], MessageBody='{"forward": 1}')
    queue_api.drain_queues()
    bodies = {r["messageId"]: json.loads(r["body"]) for r in delivered(queue_api)}
    assert bodies[sent["MessageId"]] == {"forward": 1} and {"forwarded": 1} in bodies.values()
    assert all(r["eventSource"] == "aws:sqs" for r in delivered(queue_api))
    assert list((queue_api.root / "events").glob("*-sqs-Worker-1.json"))  # --record-events


def test_given_a_handler_error_when_drained_then_the_message_is_in_the_dlq_after_max_receive_count(queue_api):
    status = queue_api.health()["queues"]
    sqs(status).send_message(QueueUrl=status["queues"]["WorkQueue"]["url"], MessageBody='{"raise": 1}')
    after = queue_api.drain_queues()
    assert after["queues"]["WorkDlq"]["visible"] == 1 and after["queues"]["WorkQueue"]["visible"] == 0
    assert after["pollers"][0]["function_errors"] == 2
    assert "SQS WorkQueue 1 message(s)" in queue_api.log_path.read_text()
