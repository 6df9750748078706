"""The moto patch of the local runtime: transactions check every condition before writing, never
replace the table (or its stream) and undo a failed apply completely."""

import boto3
import pytest
from botocore.exceptions import ClientError
from chatkeep_local import moto_dynamodb
from moto import mock_aws


@pytest.fixture
def table():
    moto_dynamodb.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        from moto.dynamodb.models import dynamodb_backends

        yield client, dynamodb_backends["123456789012"]["us-east-1"]


def _key(pk, sk="x"):
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _items(client):
    return sorted((i["pk"]["S"], i.get("n", {}).get("N")) for i in client.scan(TableName="t")["Items"])


def test_given_a_refused_condition_when_transacting_then_nothing_written_and_table_object_kept(table):
    client, backend = table
    client.put_item(TableName="t", Item={**_key("a"), "n": {"N": "1"}})
    table_object, shard, records = backend.tables["t"], backend.tables["t"].stream_shard, \
        len(backend.tables["t"].stream_shard.items)
    with pytest.raises(ClientError) as err:
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": _key("b")}},
            {"Update": {"TableName": "t", "Key": _key("a"), "UpdateExpression": "SET n = :two",
                        "ConditionExpression": "n > :five", "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        "ExpressionAttributeValues": {":two": {"N": "2"}, ":five": {"N": "5"}}}}])
    reasons = err.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["n"] == {"N": "1"}
    assert _items(client) == [("a", "1")]
    assert backend.tables["t"] is table_object and table_object.stream_shard is shard
    assert len(shard.items) == records


def test_given_all_conditions_hold_when_transacting_then_every_write_applied_in_the_stream(table):
    client, backend = table
    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": "t", "Item": {**_key("a"), "n": {"N": "1"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Put": {"TableName": "t", "Item": {**_key("b"), "n": {"N": "2"}}}}])
    assert _items(client) == [("a", "1"), ("b", "2")]
    assert len(backend.tables["t"].stream_shard.items) == 2


def test_given_a_write_failing_while_applied_then_earlier_writes_and_their_stream_records_undone(table):
    client, backend = table
    client.put_item(TableName="t", Item={**_key("a"), "n": {"S": "not a number"}})
    records = len(backend.tables["t"].stream_shard.items)
    with pytest.raises(ClientError):
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": {**_key("b"), "n": {"N": "1"}}}},
            {"Update": {"TableName": "t", "Key": _key("a"), "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
    assert _items(client) == [("a", None)]
    assert len(backend.tables["t"].stream_shard.items) == records


def test_given_two_operations_on_one_item_then_validation_error_and_nothing_written(table):
    client, _ = table
    with pytest.raises(ClientError) as err:
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": _key("a")}},
            {"Delete": {"TableName": "t", "Key": _key("a")}}])
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert _items(client) == []
