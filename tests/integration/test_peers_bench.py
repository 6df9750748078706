"""The peers section of `make bench` (bench/peers.py) runs without its extra: it skips LangChain and LangGraph,
says why, and still measures chatkeep and the plain floor (figures are read by people, not asserted here). And
the moto patches it measures the item limit with size items as DynamoDB does."""

from __future__ import annotations

import sys
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

PEER_PACKAGES = ("langchain_community", "langchain_core", "langgraph", "langgraph_checkpoint_aws")


@pytest.fixture
def without_the_peers_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if `pip install -e '.[peers]'` had never run, whether or not it has here."""
    for name in [n for n in sys.modules if n.split(".")[0] in PEER_PACKAGES] + list(PEER_PACKAGES):
        monkeypatch.setitem(sys.modules, name, None)  # a None entry makes the import raise ImportError


def test_given_no_peer_packages_when_the_section_runs_tiny_then_it_skips_them_and_measures_chatkeep_and_the_floor(
        without_the_peers_extra: None) -> None:
    from bench import peers

    out: dict[str, Any] = peers.run(sizes=(1, 3), writers=2, each=3, window=2, reads=1, search_limits=False)

    assert set(out["skipped"]) == {"LangChain DynamoDBChatMessageHistory", "LangGraph DynamoDBSaver"}
    assert all("No module named" in why and ".[peers]" in why for why in out["skipped"].values())
    assert set(out["stores"]) == {"chatkeep", "plain table (floor)"}
    for result in out["stores"].values():
        assert set(result["sizes"]) == {1, 3} and result["refused"] is None
        for at in result["sizes"].values():
            assert at["append"]["requests"] >= 1 and at["append"]["sent"] > 0 and at["append"]["cpu_ms"] >= 0
            assert at["history"]["received"] > 0 and at["newest"]["requests"] >= 1 and at["largest_item"] > 0
        assert result["headroom"]["kind"] == "none"  # one item per message: no item grows with the conversation
        assert result["race"] == {"writers": 2, "appends_each": 3, "acknowledged": 6, "refused": 0, "refusals": {},
                                  "in_history": 6, "lost": 0}
    assert out["stores"]["plain table (floor)"]["sizes"][3]["append"]["calls"] == {"PutItem": 1}
    assert "skipped LangChain DynamoDBChatMessageHistory: ModuleNotFoundError" in out["table"]


@pytest.fixture
def table() -> Any:
    from bench.moto_fidelity import like_dynamodb
    from bench.plain_store import create_table

    with mock_aws(), like_dynamodb():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "t")
        yield client


def _key() -> dict[str, Any]:
    return {"pk": {"S": "a"}, "sk": {"S": "b"}}


def test_given_an_item_of_one_big_attribute_when_it_is_replaced_by_one_as_big_then_the_new_item_alone_counts(
        table: Any) -> None:
    table.put_item(TableName="t", Item={**_key(), "h": {"S": "x" * 250_000}})

    table.update_item(TableName="t", Key=_key(), UpdateExpression="SET h = :h",
                      ExpressionAttributeValues={":h": {"S": "y" * 250_000}})  # moto alone counts 500 KB here

    assert table.get_item(TableName="t", Key=_key())["Item"]["h"]["S"][:1] == "y"


def test_given_items_around_400_kb_when_they_are_put_then_the_limit_is_400_times_1024_bytes(table: Any) -> None:
    key_and_name = len("pk" "a" "sk" "b" "b")  # the key's names and values, the binary attribute's name
    table.put_item(TableName="t", Item={**_key(), "b": {"B": b"\0" * (409_600 - key_and_name)}})  # moto: > 405,000

    with pytest.raises(ClientError, match="Item size has exceeded the maximum allowed size"):
        table.put_item(TableName="t", Item={**_key(), "b": {"B": b"\0" * (409_600 - key_and_name + 1)}})
