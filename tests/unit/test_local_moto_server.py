"""chatkeep_local.moto_server: moto's server doing less work per request, with the same answers (the attribute
values written directly are what moto's own serializer writes; host look-ups resolve as before)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from chatkeep_local import moto_server
from chatkeep_local.moto_process import MotoProcess
from moto.core.serialize import BaseJSONSerializer, XFormedAttributePicker, get_serializer_class
from moto.core.utils import get_service_model
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.utilities import dynamo_to_dict

from tests.unit.test_local_moto_process import clients, stream_table, trim_horizon

moto_server.install()

EVERY_TYPE = {
    "pk": {"S": "sess#1"}, "n": {"N": "-12.50"}, "empty": {"S": ""}, "bin": {"B": b"\x00\xffab"},
    "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"x", b"\x01"]},
    "nul": {"NULL": True}, "yes": {"BOOL": True}, "no": {"BOOL": False},
    "m": {"M": {"inner": {"S": "v"}, "deep": {"M": {"l": {"L": [{"N": "1"}, {"M": {}}, {"B": b"z"}]}}},
                "e": {"M": {}}}},
    "l": {"L": [{"S": "x"}, {"L": []}, {"NULL": True}, {"SS": ["q"]}]},
}


def generic(cls: type) -> type:
    """The serializer class as moto ships it (the patched method's original)."""
    return type("Generic" + cls.__name__, (cls,), {
        "_serialize_type_structure": BaseJSONSerializer._serialize_type_structure.__wrapped__})


def body(service: str, operation: str, result: object, *, unpatched: bool) -> str:
    model = get_service_model(service)
    cls = get_serializer_class(service, model.protocol)
    if unpatched:
        cls = generic(cls)
    serializer = cls(operation_model=model.operation_model(operation), pretty_print=False,
                     value_picker=XFormedAttributePicker())
    return serializer.serialize(result)["body"]


def item() -> dict:
    return {k: DynamoType({t: base64.b64encode(v).decode() if isinstance(v, bytes) else v for t, v in av.items()})
            for k, av in EVERY_TYPE.items()}


@pytest.mark.parametrize(("service", "operation", "result"), [
    ("dynamodb", "GetItem", lambda: {"Item": item()}),
    ("dynamodb", "Query", lambda: {"Items": [item(), item()], "Count": 2, "ScannedCount": 2,
                                    "LastEvaluatedKey": {"pk": DynamoType({"S": "sess#1"})}}),
    ("dynamodb", "UpdateItem", lambda: {"Attributes": item()}),
    ("dynamodbstreams", "GetRecords", lambda: {"Records": [{
        "eventID": "1", "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1", "dynamodb": {"Keys": {"pk": DynamoType({"S": "sess#1"})}, "NewImage": item(),
                                               "OldImage": item(), "SequenceNumber": "1100000000017454423009",
                                               "SizeBytes": 99, "StreamViewType": "NEW_AND_OLD_IMAGES"}}],
        "NextShardIterator": "it"}),
])
def test_given_an_attribute_value_of_every_type_when_serialised_directly_then_the_body_is_moto_s_own(
        service, operation, result):
    direct = body(service, operation, dynamo_to_dict(result()), unpatched=False)
    assert direct == body(service, operation, dynamo_to_dict(result()), unpatched=True)
    assert json.loads(direct)  # and it is a body, not an empty answer


def test_given_a_value_that_is_not_a_plain_attribute_value_then_moto_s_serializer_writes_it():
    odd = {"Item": {"pk": {"S": "a", "lower": "x"}, "n": None, "l": {"L": [None, {"S": "b"}]}}}
    assert body("dynamodb", "GetItem", odd, unpatched=False) == body("dynamodb", "GetItem", odd, unpatched=True)


def test_given_the_installed_server_then_hosts_resolve_to_the_same_backends_as_before():
    from moto.backends import list_of_moto_modules
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    lookup = DomainDispatcherApplication.get_backend_for_host.__wrapped__
    for host in ("dynamodb.us-east-1.amazonaws.com", "streams.dynamodb.us-east-1.amazonaws.com",
                 "sqs.us-east-1.amazonaws.com", "dynamodb", "moto_api", None, "nothing.example"):
        assert app.get_backend_for_host(host) == lookup(app, host)
        assert app.get_backend_for_host(host) == lookup(app, host)  # the memoised answer
    assert "dynamodb" in list_of_moto_modules() and "dynamodbstreams" in list_of_moto_modules()


def test_given_the_moto_process_when_items_of_every_type_are_written_then_reads_and_stream_return_them_unchanged():
    process = MotoProcess().start()
    try:
        ddb, streams, _ = clients(process.wait_ready())
        arn, shard = stream_table(ddb, streams, "every")
        ddb.put_item(TableName="every", Item=EVERY_TYPE)
        got = ddb.get_item(TableName="every", Key={"pk": {"S": "sess#1"}})["Item"]
        queried = ddb.query(TableName="every", KeyConditionExpression="pk = :p",
                            ExpressionAttributeValues={":p": {"S": "sess#1"}})["Items"]
        record = streams.get_records(ShardIterator=trim_horizon(streams, arn, shard))["Records"][0]
    finally:
        process.stop()
    expected = json.loads(json.dumps(EVERY_TYPE, default=lambda b: base64.b64encode(b).decode()))
    for answer in (got, queried[0], record["dynamodb"]["NewImage"]):
        assert _comparable(answer) == _comparable(expected)
    assert Decimal(got["n"]["N"]) == Decimal("-12.50")


def _comparable(value: object) -> object:
    """Sets in a fixed order; binary as base64 text."""
    if isinstance(value, dict):
        return {k: sorted(_comparable(v)) if k in ("SS", "NS", "BS") else _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
                           "SignedHeaders=host, Signature=0", "X-Amz-Target": "DynamoDB_20120810.ListTables",
          "Content-Type": "application/x-amz-json-1.0"}


@pytest.fixture(scope="module")
def moto_endpoint():
    process = MotoProcess().start()
    yield process.wait_ready()
    process.stop()


def test_given_requests_with_a_length_when_sent_on_one_connection_then_it_stays_open_for_the_next(moto_endpoint):
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(moto_endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    answers = []
    for _ in range(3):
        conn.request("POST", "/", body=b"{}", headers=SIGNED)
        response = conn.getresponse()
        answers.append((response.status, response.getheader("Connection"), json.loads(response.read())))
        if not answers[1:]:
            first_socket = conn.sock
    assert conn.sock is first_socket  # http.client reconnects after `Connection: close`: it never had to
    assert all(status == 200 and connection is None and "TableNames" in body for status, connection, body in answers)
    conn.close()


def test_given_a_chunked_request_then_it_is_answered_and_the_connection_closed_as_before(moto_endpoint):
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(moto_endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("POST", "/", body=iter([b"{", b"}"]), headers=SIGNED, encode_chunked=True)
    response = conn.getresponse()
    assert (response.status, response.getheader("Connection")) == (200, "close")
    assert "TableNames" in json.loads(response.read())
    conn.close()


def test_given_one_update_expression_with_different_values_then_each_update_applies_its_own(moto_endpoint):
    from botocore.exceptions import ClientError

    ddb, _, _ = clients(moto_endpoint)
    ddb.create_table(TableName="upd", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    for value in ("1", "2", "3"):  # the same text: one parsed tree, validated and applied on a copy each time
        ddb.update_item(TableName="upd", Key={"pk": {"S": "a"}}, UpdateExpression="SET v = :v ADD n :one",
                        ExpressionAttributeValues={":v": {"N": value}, ":one": {"N": "1"}})
    got = ddb.get_item(TableName="upd", Key={"pk": {"S": "a"}})["Item"]
    assert (got["v"], got["n"]) == ({"N": "3"}, {"N": "3"})
    for _ in range(2):  # a refused expression is refused every time
        with pytest.raises(ClientError) as refused:
            ddb.update_item(TableName="upd", Key={"pk": {"S": "a"}}, UpdateExpression="SET = :v",
                            ExpressionAttributeValues={":v": {"N": "1"}})
        assert refused.value.response["Error"]["Code"] == "ValidationException"
