"""scripts/rebuild_search_index.py: a deployment whose index predates the spread keys rebuilds it from the chat
table; the result is the index the stream processor writes, and the old layout is gone."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from tests.conftest import make_principal

ROOT = Path(__file__).resolve().parents[2]
ALICE = make_principal("alice", "ws-rebuild")


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("rebuild_search_index", ROOT / "scripts" / "rebuild_search_index.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def entries(dynamodb: Any, table: str) -> set[tuple[str, ...]]:
    return {(i["pk"]["S"], i["sk"]["S"], i["spk"]["S"], i["sid"]["N"], i["word"]["S"])
            for i in dynamodb.scan(TableName=table)["Items"]}


def test_given_an_index_of_the_old_layout_when_rebuilt_then_it_is_what_the_stream_writes_and_search_works(
        dynamodb: Any, chat_service: Any) -> None:
    from chatkeep.repository import keys
    from chatkeep.settings import get_settings
    from chatkeep.stream import processor
    from chatkeep_local.stream_reader import StreamReader

    settings = get_settings()
    chat, search = settings.chat_table_name, settings.search_table_name
    sessions = [chat_service.create_session(ALICE, 5, title=f"Invoice question {i}") for i in range(6)]
    for s in sessions:
        chat_service.post_message(ALICE, s.id, content="Please refund the double charge on my card")
    processor.reset()
    records = StreamReader(chat).read_new()
    assert not processor.handle({"Records": records}, None)["batchItemFailures"]
    streamed = entries(dynamodb, search)
    # The old layout: the same entries under the container's key; plus one of a session deleted long ago.
    for pk, sk, spk, sid, word in streamed:
        dynamodb.delete_item(TableName=search, Key={"pk": {"S": pk}, "sk": {"S": sk}})
        dynamodb.put_item(TableName=search, Item={"pk": {"S": keys.container_pk("ws-rebuild", 5)}, "sk": {"S": sk},
                                                  "spk": {"S": spk}, "sid": {"N": sid}, "word": {"S": word}})
    dynamodb.put_item(TableName=search, Item={
        "pk": {"S": keys.container_pk("ws-rebuild", 5)}, "sk": {"S": keys.search_sk("orphan", 99, "t")},
        "spk": {"S": keys.session_pk("ws-rebuild", 99)}, "sid": {"N": "99"}, "word": {"S": "orphan"}})
    # The container's record of its sessions' shards, as after a deploy: only the session created since.
    dynamodb.update_item(TableName=chat, Key={"pk": {"S": keys.container_pk("ws-rebuild", 5)}, "sk": {"S": "C"}},
                         UpdateExpression="SET shards = :one",
                         ExpressionAttributeValues={":one": {"NS": [str(keys.search_shard(sessions[0].id))]}})
    assert chat_service.search_sessions(ALICE, 5, "refund") == []  # the old layout is not read

    done = load_script().rebuild(dynamodb, chat, search)

    assert entries(dynamodb, search) == streamed
    assert (done.sessions, done.messages, done.old_entries_deleted) == (6, 6, len(streamed) + 1)
    assert done.containers_recorded == 1
    assert {s.id for s in chat_service.search_sessions(ALICE, 5, "refund inv")} == {s.id for s in sessions}
    again = load_script().rebuild(dynamodb, chat, search)  # idempotent
    assert entries(dynamodb, search) == streamed and again.old_entries_deleted == 0


def test_given_a_session_deleted_during_the_rebuild_then_its_entries_are_swept(
        dynamodb: Any, chat_service: Any, monkeypatch: Any) -> None:
    from chatkeep.settings import get_settings

    settings = get_settings()
    chat, search = settings.chat_table_name, settings.search_table_name
    keep = chat_service.create_session(ALICE, 6, title="keep")
    gone = chat_service.create_session(ALICE, 6, title="going away")
    script = load_script()
    real_scan = script._scan

    def scan_then_delete(client: Any, table: str, **kwargs: Any) -> Any:
        yield from real_scan(client, table, **kwargs)
        if table == chat:  # the session is deleted (and its cascade ran) after the scan read it
            chat_service.delete_session(ALICE, gone.id)

    monkeypatch.setattr(script, "_scan", scan_then_delete)
    done = script.rebuild(dynamodb, chat, search)
    assert done.gone_sessions_swept == 1
    assert {int(i["sid"]["N"]) for i in dynamodb.scan(TableName=search)["Items"]} == {keep.id}
