"""Fan-out of live updates: stored changes from the chat table's stream to subscribers (the stream processor), over
the local WebSocket API emulator with real pushes. Events and their shapes, the session's end, stale connections,
work per event, large payloads, connection records' TTL, and replays of stream batches (docs/live-updates.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chatkeep import clock
from chatkeep.models import Subscription
from chatkeep.realtime import shaping
from chatkeep.realtime.events import SESSION, message_event, reply_chunk, topic
from chatkeep.realtime.publisher import Publisher
from chatkeep.repository.connections import ConnectionStore
from chatkeep.settings import get_settings
from chatkeep_local.streams import SweptKeys
from chatkeep_local.ttl import TtlSweeper

from tests.integration.live_support import SESSION_QUERY, TODO_QUERY, LiveWorld, data_of

TODO_ID = 31


@pytest.fixture
def alice(live: LiveWorld) -> Any:
    return live.principal("alice")


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [next(iter(e.values()))["kind"] for e in events]


# ------------------------------------------------------------------ what subscribers get


def test_given_a_subscriber_when_messages_are_posted_then_each_arrives_in_order_shaped_by_its_selection(
        live, alice):
    sid = live.service.create_session(alice, TODO_ID, title="Support").id
    with live.connect(live.token("alice")) as client:
        client.subscribe("1", "subscription($s: Float!) { onTodoChatMessage(sessionId: $s) { kind message { message "
                              "sentBy { firstName } } } }", {"s": sid})
        live.subscribed("1")
        for text in ("first", "second", "third"):
            live.service.post_message(alice, sid, content=text, role="user")
        live.settle()
        events = client.events()
    assert events == [{"onTodoChatMessage": {"kind": "MESSAGE_CREATED",
                                             "message": {"message": text, "sentBy": {"firstName": "Alice"}}}}
                      for text in ("first", "second", "third")]


def test_given_session_changes_when_they_are_stored_then_both_topics_get_their_events_and_delete_completes(
        live, alice):
    sid = live.service.create_session(alice, TODO_ID, title="Before").id
    live.settle()
    with live.connect(live.token("alice")) as client:
        client.subscribe("s", SESSION_QUERY, {"s": sid})
        client.subscribe("t", TODO_QUERY, {"t": TODO_ID})
        live.subscribed("s")
        live.subscribed("t")
        live.service.update_session(alice, sid, title="After")
        live.settle()
        live.service.close_session(alice, sid)
        live.settle()
        other = live.service.create_session(alice, TODO_ID, title="Another").id
        live.service.delete_session(alice, sid)
        live.settle()
        messages = client.ping_barrier()
        assert [s["sk"] for s in live.subscription_items()] == ["S#t"]  # the completed one is gone
    by_op: dict[str, list[Any]] = {"s": [], "t": []}
    for m in messages:
        by_op[m["id"]].append(m)
    assert kinds([data_of(m) for m in by_op["s"] if m["type"] == "next"]) == [
        "SESSION_RENAMED", "SESSION_CLOSED", "SESSION_DELETED"]
    assert by_op["s"][-1] == {"id": "s", "type": "complete"}  # the session is gone: its stream completes
    todo = [data_of(m)["onTodoChatSessions"] for m in by_op["t"]]
    assert [(e["kind"], e["session"]["id"]) for e in todo] == [
        ("SESSION_UPDATED", sid), ("SESSION_CLOSED", sid), ("SESSION_CREATED", other), ("SESSION_DELETED", sid)]
    assert todo[0]["session"]["title"] == "After" and todo[1]["session"]["status"] == "CLOSED"


def test_given_a_message_posted_when_its_count_is_written_then_the_todo_gets_one_update_with_the_count(live, alice):
    sid = live.service.create_session(alice, TODO_ID).id
    live.settle()
    with live.connect(live.token("alice")) as client:
        client.subscribe("t", TODO_QUERY, {"t": TODO_ID})
        live.subscribed("t")
        live.service.post_message(alice, sid, content="hello", role="user")
        live.settle()
        (event,) = client.events()
    assert event["onTodoChatSessions"]["kind"] == "SESSION_UPDATED"
    assert event["onTodoChatSessions"]["session"]["messageCount"] == 1


# ------------------------------------------------------------------ stale connections, work per event


def test_given_a_subscriber_gone_without_disconnect_when_an_event_comes_then_it_is_forgotten_and_the_batch_succeeds(
        live, alice):
    sid = live.service.create_session(alice, TODO_ID).id
    store = ConnectionStore()
    gone = "GoneGoneGone000="  # a connection API Gateway closed while its $disconnect was lost
    store.open(gone, connected_at=clock.now(), expires_at=int(clock.now()) + 7200)
    store.acknowledge(gone, alice, token_expires_at=clock.now() + 3600)
    store.subscribe(Subscription(gone, "1", topic(SESSION, "ws1", sid), SESSION_QUERY, {"s": sid}, None, "alice",
                                 False, clock.now() + 3600, int(clock.now()) + 7200), at=1)
    with live.connect(live.token("alice")) as client:
        client.subscribe("1", SESSION_QUERY, {"s": sid})
        live.wait_for(lambda: len(live.subscription_items()) == 2, "both subscriptions")
        live.service.post_message(alice, sid, content="still here?", role="user")
        live.settle()
        assert kinds(client.events()) == ["MESSAGE_CREATED"]
    assert live.batches and all(b == {"batchItemFailures": []} for b in live.batches)
    stats = [p.stats for p in live.processors if p.stats.live_events]
    assert stats[0].live_gone == 1 and stats[0].live_pushes == 1 and stats[0].live_failed == 0
    assert store.get(gone) is None and [s for s in live.subscription_items() if s["pk"] == f"C#{gone}"] == []


def test_given_many_connections_on_other_topics_when_an_event_comes_then_work_is_the_topics_subscribers_only(
        live, alice):
    store = ConnectionStore()
    now = clock.now()
    for n in range(60):  # subscribers of other sessions
        store.open(f"other{n:03d}", connected_at=now, expires_at=int(now) + 7200)
        store.acknowledge(f"other{n:03d}", alice, token_expires_at=now + 3600)
        store.subscribe(Subscription(f"other{n:03d}", "1", topic(SESSION, "ws1", 1000 + n), SESSION_QUERY, None,
                                     None, "alice", False, now + 3600, int(now) + 7200), at=1)
    sid = live.service.create_session(alice, TODO_ID).id
    with live.connect(live.token("alice")) as one, live.connect(live.token("alice")) as two:
        one.subscribe("a", SESSION_QUERY, {"s": sid})
        two.subscribe("b", SESSION_QUERY, {"s": sid})
        live.subscribed("a")
        live.subscribed("b")
        message, _ = live.service.post_message(alice, sid, content="hi", role="user")
        done = Publisher().publish([message_event("MESSAGE_CREATED", message)])
    # One Query of the topic's subscribers, one execution of the shared document, one push per subscriber.
    assert (done.topics, done.subscribers, done.shaped, done.pushes, done.gone) == (1, 2, 1, 2, 0)


def test_given_a_subscriber_whose_token_expired_when_an_event_comes_then_it_is_disconnected(live, alice):
    sid = live.service.create_session(alice, TODO_ID).id
    with live.connect(live.token("alice", ttl=30)) as client:
        client.subscribe("1", SESSION_QUERY, {"s": sid})
        live.subscribed("1")
        message, _ = live.service.post_message(alice, sid, content="hi", role="user")
        before = clock.offset()
        clock.set_offset(before + 60)
        try:
            done = Publisher().publish([message_event("MESSAGE_CREATED", message)])
        finally:
            clock.set_offset(before)
        seen, code = client.closed()
    assert (done.expired, done.pushes) == (1, 0) and seen == [] and code == 1000
    assert live.subscription_items() == []


# ------------------------------------------------------------------ payload size


def test_given_a_message_whose_json_exceeds_128_kb_when_delivered_then_its_text_is_cut_and_marked(live, alice):
    sid = live.service.create_session(alice, TODO_ID).id
    content = "\u0001" * 32 * 1024  # 32 KB of text that JSON escapes six-fold: 192 KB as is
    with live.connect(live.token("alice")) as client:
        client.subscribe("1", "subscription($s: Float!) { onTodoChatMessage(sessionId: $s) { kind truncated "
                              "message { id message } } }", {"s": sid})
        live.subscribed("1")
        live.service.post_message(alice, sid, content=content, role="user")
        live.settle()
        (message,) = [m for m in client.ping_barrier() if m["type"] == "next"]
    event = message["payload"]["data"]["onTodoChatMessage"]
    assert event["truncated"] is True and message["payload"]["extensions"] == {"truncated": True}
    assert 0 < len(event["message"]["message"]) < len(content) and content.startswith(event["message"]["message"])
    pushed = [p for p in live.api.pushes if b'"next"' in p.data]
    assert pushed and all(len(p.data) <= shaping.MAX_MESSAGE_BYTES and p.status == 200 for p in pushed)


def test_given_a_long_reply_when_a_chunk_is_shaped_then_the_text_so_far_is_cut_and_the_delta_kept(live, alice):
    sid = live.service.create_session(alice, TODO_ID).id
    reply, _ = live.service.post_message(alice, sid, content="x", role="user")
    text = "word " * 60_000  # 300 KB so far
    event = reply_chunk(reply, text, delta=text[-500:], offset=len(text) - 500)
    document = ("subscription($s: Float!) { onTodoChatMessage(sessionId: $s) { delta offset truncated "
                "message { message } } }")
    from chatkeep.realtime.subscriptions import document as checked

    data = json.loads(shaping.payload(event, checked(document), {"s": sid}, None))
    shaped = data["data"]["onTodoChatMessage"]
    assert shaped["delta"] == text[-500:] and shaped["offset"] == len(text) - 500 and shaped["truncated"] is True
    assert len(json.dumps(data).encode()) <= shaping.PAYLOAD_BUDGET


def test_given_a_selection_too_large_even_without_the_text_then_the_payload_is_an_error(live, alice):
    sid = live.service.create_session(alice, TODO_ID, metadata={f"k{i}": "v" * 500 for i in range(15)}).id
    session = live.service.get_session_only(alice, sid)
    from chatkeep.realtime.events import session_event
    from chatkeep.realtime.subscriptions import document as checked

    aliases = " ".join(f"m{i}: metadata" for i in range(20))  # 20 x 7.5 KB
    query = f"subscription($s: Float!) {{ onTodoChatMessage(sessionId: $s) {{ session {{ {aliases} }} }} }}"
    data = json.loads(shaping.payload(session_event("SESSION_RENAMED", session, on=SESSION), checked(query),
                                      {"s": sid}, None))
    assert data["data"] is None and data["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


# ------------------------------------------------------------------ records expire with their connection


def test_given_connection_records_past_their_ttl_then_fan_out_skips_them_and_the_ttl_sweep_deletes_them(
        live, alice, clock_offset):
    sid = live.service.create_session(alice, TODO_ID).id
    with live.connect(live.token("alice")) as client:
        client.subscribe("1", SESSION_QUERY, {"s": sid})
        item = live.subscribed("1")
    live.wait_for(lambda: live.subscription_items() == [], "$disconnect forgot the closed socket's subscription")
    store = ConnectionStore()
    # The socket is closed but suppose its $disconnect was lost: the records stay until they expire.
    store.open("lost0000000000==", connected_at=clock.now(), expires_at=int(clock.now()) + 2 * 3600 + 300)
    store.acknowledge("lost0000000000==", alice, token_expires_at=clock.now() + 10 * 3600)
    store.subscribe(Subscription("lost0000000000==", "1", item["topic"], SESSION_QUERY, {"s": sid}, None, "alice",
                                 False, clock.now() + 10 * 3600, int(clock.now()) + 2 * 3600 + 300), at=1)
    where = item["topic"]
    assert [s.connection_id for s in store.subscribers(where, now=clock.now())] == ["lost0000000000=="]
    clock_offset.advance(2 * 3600 + 301)
    assert store.subscribers(where, now=clock.now()) == []  # DynamoDB deletes late; fan-out ignores them now
    sweeper = TtlSweeper(live.client, {get_settings().connections_table_name: "expires_at"}, SweptKeys(), clock.now)
    assert sweeper.sweep_once() == 2
    assert live.subscription_items() == [] and store.get("lost0000000000==") is None


# ------------------------------------------------------------------ replays of stream batches


def _post_in_two_sessions(live: LiveWorld, alice: Any) -> tuple[int, int]:
    a = live.service.create_session(alice, TODO_ID, title="A").id
    b = live.service.create_session(alice, TODO_ID, title="B").id
    live.settle()
    return a, b


def test_given_a_batch_whose_second_session_fails_when_the_suffix_is_redelivered_then_each_event_is_sent_once(
        live, alice, monkeypatch):
    from chatkeep.repository.stream_store import StreamStore

    a, b = _post_in_two_sessions(live, alice)
    with live.connect(live.token("alice")) as client:
        client.subscribe("a", SESSION_QUERY, {"s": a})
        client.subscribe("b", SESSION_QUERY, {"s": b})
        live.subscribed("a")
        live.subscribed("b")
        live.service.post_message(alice, a, content="a1", role="user")
        live.service.post_message(alice, b, content="b1", role="user")
        live.service.post_message(alice, a, content="a2", role="user")
        records = live.reader.read_new()
        original = StreamStore.apply_message_counts

        def failing(self: Any, ws: str, sid: int, counted: Any) -> Any:
            if sid == b:
                raise RuntimeError("throttled")
            return original(self, ws, sid, counted)

        monkeypatch.setattr(StreamStore, "apply_message_counts", failing)
        first = live.deliver(records)
        monkeypatch.setattr(StreamStore, "apply_message_counts", original)
        reported = {f["itemIdentifier"] for f in first["batchItemFailures"]}
        suffix = [r for r in records if r["dynamodb"]["SequenceNumber"] in reported]
        assert 0 < len(suffix) < len(records)
        assert live.deliver(suffix) == {"batchItemFailures": []}
        live.settle()
        received = [(m["id"], m["payload"]["data"]["onTodoChatMessage"]["message"]["message"])
                    for m in client.ping_barrier() if m["type"] == "next"]
    assert sorted(received) == [("a", "a1"), ("a", "a2"), ("b", "b1")]


def test_given_a_whole_batch_replayed_after_a_failed_invocation_then_events_come_again_at_least_once(live, alice):
    a, _ = _post_in_two_sessions(live, alice)
    with live.connect(live.token("alice")) as client:
        client.subscribe("a", SESSION_QUERY, {"s": a})
        live.subscribed("a")
        message, _ = live.service.post_message(alice, a, content="once", role="user")
        records = live.reader.read_new()
        live.deliver(records)
        live.deliver(records)  # Lambda retries a batch whose invocation failed after it pushed
        ids = [m["payload"]["data"]["onTodoChatMessage"]["message"]["id"] for m in client.ping_barrier()
               if m["type"] == "next"]
    assert ids == [message.id, message.id]  # documented: at least once; message.id identifies the message
