"""An agent reply's chunks, from the turn worker straight to the session's subscribers (docs/live-updates.md,
"Delivery"): the runner hands every delta to its LiveReply and flushes it before the reply's end is written; the
ReplyStream pushes what accumulated as one REPLY_CHUNK, over the local WebSocket API emulator."""

from __future__ import annotations

from typing import Any

import pytest
from chatkeep.models import Message
from chatkeep.realtime.publisher import Publisher
from chatkeep.realtime.reply_stream import MAX_PENDING_CHARS, ReplyStream

from tests.integration.live_support import LiveWorld
from tests.integration.test_agent_turns import MODEL, Script, ScriptedModel, TurnsWorld, delta, ending

CHUNKS = """subscription($s: Float!) { onTodoChatMessage(sessionId: $s) { kind delta offset
  message { id message status isBotReply } } }"""


class Frozen:
    """A monotonic clock that never moves: after the first chunk, nothing is pushed until a flush (or a big
    delta), whatever the machine's speed."""

    def __call__(self) -> float:
        return 1000.0


class Recorder:
    """A LiveReply that records what the runner tells it, in order, with the store's finish in between."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def grew(self, reply: Message, text: str, delta: str) -> None:
        self.log.append(("grew", reply.id, text, delta))

    def flush(self) -> None:
        self.log.append(("flush",))

    def close(self) -> None:
        self.log.append(("close",))


def test_given_a_turn_when_the_model_streams_then_every_delta_reaches_the_live_reply_before_its_end_is_written(
        dynamodb, monkeypatch):
    monkeypatch.setenv("ALLOWED_MODEL_IDS", MODEL)
    from chatkeep import settings

    settings.reset()
    world = TurnsWorld()
    session = world.session(world.agent())
    world.post(session.id, "hello")
    log: list[Any] = []
    runner = world.runner(ScriptedModel(Script(delta("Hel"), delta("lo "), delta("there"), *ending())))
    runner.live = lambda claim: Recorder(log)
    finish = world.store.finish

    def finishing(*args: Any, **kwargs: Any) -> Any:
        log.append(("finish",))
        return finish(*args, **kwargs)

    world.store.finish = finishing  # type: ignore[method-assign]
    turn = world.service.get_session_only(world.user, session.id).turn
    result = runner.run(world.user.workspace_id, session.id, turn.id, worker="w1")

    assert result.outcome == "complete"
    grew = [entry for entry in log if entry[0] == "grew"]
    assert [(text, piece) for _, _, text, piece in grew] == [("Hel", "Hel"), ("Hello ", "lo "),
                                                            ("Hello there", "there")]
    assert {reply_id for _, reply_id, _, _ in grew} == {result.reply_id}
    assert [entry[0] for entry in log[len(grew):]] == ["flush", "finish", "close"]


def test_given_a_subscriber_when_the_reply_grows_then_chunks_batch_deltas_with_offsets_and_the_text_so_far(
        live, alice_reply):
    sid, reply = alice_reply
    with live.connect(live.token("alice")) as client:
        client.subscribe("r", CHUNKS, {"s": sid})
        live.subscribed("r")
        stream = ReplyStream(Publisher(), "ws1", sid, monotonic=Frozen())
        try:
            stream.grew(reply, "Hel", "Hel")  # the first chunk goes at once
            first = client.recv()
            for text, piece in (("Hello", "lo"), ("Hello the", " the"), ("Hello there.", "re.")):
                stream.grew(reply, text, piece)  # within the interval: they wait for the next push
            stream.flush()
            chunks = [first, *client.ping_barrier()]
        finally:
            stream.close()
    events = [m["payload"]["data"]["onTodoChatMessage"] for m in chunks]
    assert [(e["kind"], e["delta"], e["offset"], e["message"]["message"]) for e in events] == [
        ("REPLY_CHUNK", "Hel", 0, "Hel"), ("REPLY_CHUNK", "lo there.", 3, "Hello there.")]
    assert {e["message"]["id"] for e in events} == {reply.id} and events[0]["message"]["isBotReply"] is True


def test_given_a_large_delta_when_it_accumulates_then_it_is_pushed_without_waiting_for_the_interval(
        live, alice_reply):
    sid, reply = alice_reply
    with live.connect(live.token("alice")) as client:
        client.subscribe("r", CHUNKS, {"s": sid})
        live.subscribed("r")
        stream = ReplyStream(Publisher(), "ws1", sid, monotonic=Frozen())
        try:
            stream.grew(reply, "a", "a")
            client.recv()
            big = "b" * MAX_PENDING_CHARS
            stream.grew(reply, "a" + big, big)
            event = client.recv()["payload"]["data"]["onTodoChatMessage"]  # no flush: pushed because it is big
        finally:
            stream.close()
    assert event["offset"] == 1 and event["delta"] == big


def test_given_a_reply_restarted_by_a_takeover_when_it_grows_again_then_the_chunk_offset_is_zero(live, alice_reply):
    sid, reply = alice_reply
    with live.connect(live.token("alice")) as client:
        client.subscribe("r", CHUNKS, {"s": sid})
        live.subscribed("r")
        stream = ReplyStream(Publisher(), "ws1", sid, monotonic=Frozen())
        try:
            stream.grew(reply, "Old text", "Old text")
            client.recv()
            stream.grew(reply, "New", "New")
            stream.flush()
            (restarted,) = client.ping_barrier()
        finally:
            stream.close()
    event = restarted["payload"]["data"]["onTodoChatMessage"]
    assert (event["delta"], event["offset"], event["message"]["message"]) == ("New", 0, "New")


def test_given_no_subscriber_when_the_reply_grows_then_nothing_is_pushed_and_subscribers_are_read_once(
        live, alice_reply):
    sid, reply = alice_reply
    stream = ReplyStream(Publisher(), "ws1", sid, monotonic=Frozen())
    try:
        for n in range(1, 4):
            stream.grew(reply, "x" * n, "x")
            stream.flush()
    finally:
        stream.close()
    assert (stream.chunks, stream.delivery.topics, stream.delivery.pushes) == (0, 1, 0)


@pytest.fixture
def alice_reply(live: LiveWorld) -> tuple[int, Message]:
    from chatkeep.models import ReplyStatus, Role

    alice = live.principal("alice")
    sid = live.service.create_session(alice, 5, title="Agent").id
    message, _ = live.service.post_message(alice, sid, content="question", role="user")
    reply = Message(id=message.id + 1, workspace_id="ws1", session_id=sid, container_id=5, content="",
                    role=Role.ASSISTANT, created_at=message.created_at, status=ReplyStatus.STREAMING, model=MODEL)
    return sid, reply
