"""Keys spread for scale (docs/architecture.md, "Limits and scale"): a container's search entries over 64 keys per
first character, its activity order over 32 gsi1 keys, a workspace's usage over 8 keys. The behaviour must not
change: prefix search, every word must match, title matches first, lists in activity order with totals that
agree with the pages, older items (written before the shards) still found."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_principal

ALICE = make_principal("alice", "ws-shards")
TODO = 77


@pytest.fixture
def world(chat_service: Any) -> Any:
    from chatkeep.settings import get_settings
    from chatkeep.stream import processor
    from chatkeep_local.stream_reader import StreamReader

    processor.reset()
    reader = StreamReader(get_settings().chat_table_name)

    class World:
        service = chat_service

        def settle(self) -> None:
            for _ in range(6):
                records = reader.read_new()
                if not records:
                    return
                for i in range(0, len(records), 100):
                    assert not processor.handle({"Records": records[i:i + 100]}, None)["batchItemFailures"]

        def search(self, query: str) -> list[Any]:
            return chat_service.search_sessions(ALICE, TODO, query)

    return World()


def index_keys(dynamodb: Any) -> set[str]:
    from chatkeep.settings import get_settings

    return {i["pk"]["S"] for i in dynamodb.scan(TableName=get_settings().search_table_name)["Items"]}


# ---------------------------------------------------------------- search

def test_given_many_sessions_when_indexed_then_one_containers_entries_spread_over_many_keys(world, dynamodb):
    for i in range(12):
        s = world.service.create_session(ALICE, TODO, title=f"Invoice question {i}")
        world.service.post_message(ALICE, s.id, content="please refund the invoice")
    world.settle()
    pks = index_keys(dynamodb)
    assert len({pk.rsplit("#", 1)[1] for pk in pks}) > 4  # session shards
    assert {pk.split("#I#")[1][0] for pk in pks} >= {"i", "q", "p", "r", "t"}  # first characters


def test_given_a_one_letter_query_then_every_word_starting_with_it_matches_in_every_shard(world):
    hits = [world.service.create_session(ALICE, TODO, title=t).id
            for t in ("Refund", "refresh token", "Résumé upload", "a rocket")]
    miss = world.service.create_session(ALICE, TODO, title="billing").id
    world.settle()
    found = {s.id for s in world.search("r")}
    assert found == set(hits) and miss not in found
    assert {s.id for s in world.search("RÉ")} == set(hits[:3])  # accents and case folded as indexed


def test_given_several_words_then_every_word_must_match_and_title_matches_come_first(world, clock_offset):
    title_hit = world.service.create_session(ALICE, TODO, title="Invoice refund")
    content_hit = world.service.create_session(ALICE, TODO, title="Question")
    one_word = world.service.create_session(ALICE, TODO, title="Invoice only")
    clock_offset.advance(5)
    world.service.post_message(ALICE, content_hit.id, content="my invoice needs a refund")  # newer activity
    world.settle()
    assert [s.id for s in world.search("refund inv")] == [title_hit.id, content_hit.id]
    assert one_word.id not in {s.id for s in world.search("invoice refund")}


def test_given_a_deleted_session_then_its_entries_are_gone_from_every_shard(world, dynamodb):
    from chatkeep.settings import get_settings

    keep = world.service.create_session(ALICE, TODO, title="keep me")
    gone = world.service.create_session(ALICE, TODO, title="alpha bravo charlie")
    world.service.post_message(ALICE, gone.id, content="delta echo foxtrot golf hotel india juliet")
    world.settle()
    world.service.delete_session(ALICE, gone.id)
    world.settle()
    items = dynamodb.scan(TableName=get_settings().search_table_name)["Items"]
    assert {int(i["sid"]["N"]) for i in items} == {keep.id}
    assert world.search("alpha") == []


# ---------------------------------------------------------------- activity order

def test_given_sessions_over_every_activity_shard_when_paged_by_cursor_then_each_once_in_activity_order(
        world, clock_offset):
    created = []
    for i in range(40):
        created.append(world.service.create_session(ALICE, TODO, title=f"s{i}"))
        clock_offset.advance(1)
    world.service.post_message(ALICE, created[0].id, content="bump")  # the oldest becomes the newest
    expected = [created[0].id] + [s.id for s in reversed(created[1:])]
    seen, cursor = [], None
    while True:
        page = world.service.list_sessions(ALICE, TODO, limit=7, cursor=cursor)
        assert page.total_count == 40
        seen += [s.id for s in page.sessions]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == expected


def test_given_a_page_smaller_than_a_shard_then_the_total_is_counted_and_agrees_with_offset_paging(world):
    created = {world.service.create_session(ALICE, TODO, title=f"s{i}").id for i in range(40)}
    first = world.service.list_sessions(ALICE, TODO, limit=1, offset=0)  # 2 a key read: some keys hold more
    assert first.total_count == 40 and first.has_more
    seen = [s.id for offset in range(0, 40, 9)
            for s in world.service.list_sessions(ALICE, TODO, limit=9, offset=offset).sessions]
    assert sorted(seen) == sorted(created)


def test_given_a_session_written_before_the_shards_then_it_is_listed_and_counted_in_its_place(
        world, dynamodb, clock_offset):
    from chatkeep.repository import keys
    from chatkeep.settings import get_settings

    table = get_settings().chat_table_name
    old = world.service.create_session(ALICE, TODO, title="old layout")
    clock_offset.advance(2)
    new = world.service.create_session(ALICE, TODO, title="new layout")
    dynamodb.update_item(TableName=table, Key={"pk": {"S": keys.session_pk("ws-shards", old.id)}, "sk": {"S": "S"}},
                         UpdateExpression="SET gsi1pk = :c",
                         ExpressionAttributeValues={":c": {"S": keys.container_pk("ws-shards", TODO)}})
    clock_offset.advance(2)
    world.service.post_message(ALICE, old.id, content="still here")
    page = world.service.list_sessions(ALICE, TODO)
    assert [s.id for s in page.sessions] == [old.id, new.id] and page.total_count == 2
    assert world.service.list_sessions(ALICE, TODO, limit=1).total_count == 2


# ---------------------------------------------------------------- usage

def test_given_usage_on_several_keys_and_the_old_key_then_the_workspace_usage_sums_them(dynamodb):
    from chatkeep.repository import keys
    from chatkeep.repository.dynamodb import DynamoDBChatRepository
    from chatkeep.repository.turn_store import TurnStore
    from chatkeep.settings import get_settings

    table = get_settings().chat_table_name
    for pk, tokens in ((keys.usage_pk("ws-u", 0), 10), (keys.usage_pk("ws-u", 5), 20), (keys.usage_pk("ws-u"), 30)):
        dynamodb.put_item(TableName=table, Item={
            "pk": {"S": pk}, "sk": {"S": keys.usage_sk("2026-12-03", "m1")}, "type": {"S": "usage"},
            "day": {"S": "2026-12-03"}, "model": {"S": "m1"}, "turns": {"N": "1"},
            "input_tokens": {"N": str(tokens)}, "output_tokens": {"N": "1"}})
    rows = DynamoDBChatRepository().workspace_usage("ws-u", "2026-12-01", "2026-12-31")
    assert rows == [{"day": "2026-12-03", "model": "m1", "turns": 3, "input_tokens": 60, "output_tokens": 3}]
    assert TurnStore().tokens_today("ws-u", "2026-12-03") == 63


# ---------------------------------------------------------------- the container's record of its shards

def drop_shard_record(dynamodb: Any, cid: int) -> None:
    """What a container written before the record looks like: no `sharded`, no `shards`."""
    from chatkeep.repository import keys
    from chatkeep.settings import get_settings

    dynamodb.update_item(TableName=get_settings().chat_table_name,
                         Key={"pk": {"S": keys.container_pk("ws-shards", cid)}, "sk": {"S": "C"}},
                         UpdateExpression="REMOVE sharded, shards")


def test_given_a_small_container_then_lists_and_search_read_only_the_keys_its_sessions_are_in(
        world, ddb_requests):
    from chatkeep.repository import keys

    sessions = [world.service.create_session(ALICE, TODO, title=f"refund {i}") for i in range(3)]
    world.settle()
    shards = {keys.search_shard(s.id) for s in sessions}
    ddb_requests.reset()
    assert len(world.service.list_sessions(ALICE, TODO).sessions) == 3
    assert ddb_requests.calls == {"Query": 1 + len({s % keys.ACTIVITY_SHARDS for s in shards})}
    ddb_requests.reset()
    assert len(world.search("refund")) == 3
    assert ddb_requests.calls == {"GetItem": 1, "Query": len(shards), "BatchGetItem": 1}


def test_given_a_container_without_the_record_then_every_key_is_read_and_everything_found(
        world, dynamodb, ddb_requests):
    from chatkeep.repository import keys

    sessions = {world.service.create_session(ALICE, TODO, title=f"refund {i}").id for i in range(3)}
    world.settle()
    drop_shard_record(dynamodb, TODO)
    ddb_requests.reset()
    page = world.service.list_sessions(ALICE, TODO)
    assert {s.id for s in page.sessions} == sessions and page.total_count == 3
    assert ddb_requests.calls == {"Query": 1 + keys.ACTIVITY_SHARDS}
    ddb_requests.reset()
    assert {s.id for s in world.search("refund")} == sessions
    assert ddb_requests.calls["Query"] == keys.SEARCH_SHARDS


def test_given_starter_sessions_then_their_home_container_records_their_shards(world, dynamodb):
    from chatkeep.repository import keys
    from chatkeep.repository.dynamodb import DynamoDBChatRepository

    bot = make_principal("ops", "ws-shards", service=True)
    world.service.create_agent(bot, slug="helper", name="Helper")
    starter = world.service.starter_session(ALICE, "helper")
    home = DynamoDBChatRepository().get_container("ws-shards", starter.container_id)
    assert home is not None and home.session_shards is not None
    assert keys.search_shard(starter.id) in home.session_shards
    assert [s.id for s in world.service.list_sessions(ALICE, starter.container_id).sessions] == [starter.id]
