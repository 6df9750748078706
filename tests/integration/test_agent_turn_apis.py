"""Agent turns through both APIs' handlers over moto: agents with a provider, a post that queues a turn (and the
409 while it runs), cancel, retry, usage, and who may do each (docs/agents.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import claims_for
from tests.integration.test_graphql_operations import codes, data, gql
from tests.integration.test_rest_api import SERVICE, Client

MODEL = "amazon.nova-lite-v1:0"


@pytest.fixture
def world(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ALLOWED_MODEL_IDS", MODEL)
    from chatkeep_local.harness import reset_caches

    reset_caches()
    bot = Client("bot-1", "ws1", scope=SERVICE, name=None)
    alice = Client("alice", "ws1")
    agent = bot.post("/v1/agents", {"slug": "helper", "name": "Helper", "provider": "bedrock", "model": MODEL,
                                    "max_output_tokens": 300, "history_window_tokens": 2000})
    assert agent.status == 201, agent.body
    channel = alice.channel(agent_id=agent.body["id"])
    session = alice.session(channel["id"])
    return alice, bot, agent.body, channel, session


def test_given_a_bedrock_agent_then_rest_shows_its_provider_and_limits(world: Any) -> None:
    _, bot, agent, _, _ = world
    got = bot.get(f"/v1/agents/{agent['id']}").body
    assert (got["provider"], got["model"], got["max_output_tokens"], got["history_window_tokens"]) == (
        "bedrock", MODEL, 300, 2000)


def test_given_a_model_outside_allowed_ids_then_creating_the_agent_is_a_422_naming_the_allowed(world: Any) -> None:
    _, bot, _, _, _ = world
    reply = bot.post("/v1/agents", {"slug": "gpt", "name": "X", "provider": "bedrock", "model": "gpt-4"})
    assert reply.status == 422 and MODEL in reply.body["error"]["message"]
    assert bot.post("/v1/agents", {"slug": "gpt", "name": "X", "model": "gpt-4"}).status == 201  # external: free


@pytest.mark.parametrize("field", ["max_output_tokens", "history_window_tokens"])
def test_given_a_boolean_token_count_then_creating_the_agent_is_a_422(world: Any, field: str) -> None:
    _, bot, _, _, _ = world
    reply = bot.post("/v1/agents", {"slug": f"b-{field[:3]}", "name": "X", "provider": "bedrock", "model": MODEL,
                                    field: True})
    assert reply.status == 422, reply.body


def test_given_a_managed_session_when_a_user_posts_then_the_201_names_the_queued_turn(world: Any) -> None:
    alice, _, _, _, session = world
    message = alice.message(session["id"], "hello")
    assert message["turn"]["status"] == "queued" and message["turn"]["message_id"] == message["id"]
    assert message["turn"]["id"].startswith("trn_")
    got = alice.get(f"/v1/sessions/{session['id']}").body
    assert got["turn"]["id"] == message["turn"]["id"] and got["usage"] == {"input_tokens": 0, "output_tokens": 0}
    again = alice.post(f"/v1/sessions/{session['id']}/messages", {"content": "are you there?"})
    assert (again.status, again.code) == (409, "turn_in_progress")


def test_given_a_queued_turn_when_cancelled_then_a_new_post_is_accepted_and_retry_runs_again(world: Any) -> None:
    alice, _, _, _, session = world
    first = alice.message(session["id"], "hello")
    cancelled = alice.post(f"/v1/sessions/{session['id']}/turn/cancel")
    assert cancelled.status == 200 and cancelled.body["turn"]["status"] == "cancelled"
    assert alice.post(f"/v1/sessions/{session['id']}/turn/cancel").status == 409  # nothing in progress
    retried = alice.post(f"/v1/sessions/{session['id']}/turn")
    assert retried.status == 200 and retried.body["turn"]["status"] == "queued"
    assert retried.body["turn"]["message_id"] == first["id"] and retried.body["turn"]["id"] != first["turn"]["id"]
    assert (alice.post(f"/v1/sessions/{session['id']}/turn").code) == "turn_in_progress"


def test_given_a_channel_post_without_session_then_the_new_session_carries_its_first_turn(world: Any) -> None:
    alice, _, _, channel, _ = world
    reply = alice.post(f"/v1/channels/{channel['id']}/messages", {"content": "hi"})
    assert reply.status == 201
    assert reply.body["session"]["turn"]["status"] == "queued"
    assert reply.body["message"]["turn"]["id"] == reply.body["session"]["turn"]["id"]


def test_given_other_principals_then_they_cannot_cancel_retry_or_read_usage(world: Any) -> None:
    alice, bot, _, _, session = world
    alice.message(session["id"], "hello")
    for other in (Client("bob", "ws1"), Client("alice", "ws2"), Client("bot-1", "ws2", scope=SERVICE)):
        assert other.post(f"/v1/sessions/{session['id']}/turn/cancel").status == 404
        assert other.post(f"/v1/sessions/{session['id']}/turn").status == 404
    assert alice.get("/v1/usage").status == 403
    assert bot.get("/v1/usage").body == {"data": []}
    assert bot.get("/v1/usage", query={"from": "2026-02-30"}).status == 422  # not a day
    assert bot.get("/v1/usage", query={"from": "2026-12-03", "to": "2026-12-01"}).body == {"data": []}


def test_given_graphql_then_a_post_names_its_turn_and_cancel_and_retry_are_mutations(world: Any) -> None:
    alice, _, _, _, session = world
    from chatkeep import ids

    sid = ids.decode(ids.Kind.SESSION, session["id"])
    post = "mutation($s: Float!, $m: String!) { createTodoChatMessage(data: {sessionId: $s, message: $m}) " \
           "{ id status turn { id status messageId } } }"
    created = data(gql(post, {"s": sid, "m": "hello"}))["createTodoChatMessage"]
    assert created["status"] is None and created["turn"]["status"] == "QUEUED"
    assert created["turn"]["messageId"] == created["id"]
    assert codes(gql(post, {"s": sid, "m": "again"})) == ["TURN_IN_PROGRESS"]
    cancel = "mutation($s: Float!) { cancelTodoChatTurn(sessionId: $s) { turn { status } usage { inputTokens } } }"
    assert data(gql(cancel, {"s": sid}))["cancelTodoChatTurn"] == {"turn": {"status": "CANCELLED"},
                                                                  "usage": {"inputTokens": 0}}
    retry = "mutation($s: Float!) { retryTodoChatTurn(sessionId: $s) { turn { status messageId } } }"
    assert data(gql(retry, {"s": sid}))["retryTodoChatTurn"]["turn"] == {"status": "QUEUED",
                                                                         "messageId": created["id"]}
    assert codes(gql(cancel, {"s": sid}, claims=claims_for("bob", "ws1"))) == ["NOT_FOUND"]
