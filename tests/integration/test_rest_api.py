"""REST API over moto: every route, its error paths, isolation, idempotency keys and request counts.

Requests are API Gateway HTTP API payload-2.0 events (tests/conftest.py `http_event`), handed to the same
handler the RestApiFunction runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import claims_for, http_event

SERVICE = "chatkeep/service"


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return self.body["error"]["code"] if isinstance(self.body, dict) and "error" in self.body else None


class Client:
    """Calls the REST handler as one principal (sub, workspace, scope)."""

    def __init__(self, sub: str = "alice", workspace: str = "ws1", scope: str | None = None,
                 name: str | None = "Alice") -> None:
        self.claims = claims_for(sub, workspace, name=name, scope=scope)

    def call(self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, raw_body: str | None = None, auth: bool = True) -> Reply:
        from chatkeep.rest.app import handler

        event = http_event(method, path, body=body, claims=self.claims if auth else None, headers=headers,
                           query=query, raw_body=raw_body)
        out = handler(event, None)
        text = out.get("body") or ""
        parsed = json.loads(text) if text[:1] in ("{", "[") else text
        return Reply(out["statusCode"], parsed, out.get("headers") or {})

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, {} if body is None else body, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> Reply:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.call("DELETE", path, **kw)

    # shortcuts
    def channel(self, **body: Any) -> dict[str, Any]:
        reply = self.post("/v1/channels", body)
        assert reply.status == 201, reply.body
        return reply.body

    def session(self, channel_id: str, **body: Any) -> dict[str, Any]:
        reply = self.post(f"/v1/channels/{channel_id}/sessions", body)
        assert reply.status == 201, reply.body
        return reply.body

    def message(self, session_id: str, content: str, **body: Any) -> dict[str, Any]:
        reply = self.post(f"/v1/sessions/{session_id}/messages", {"content": content, **body})
        assert reply.status == 201, reply.body
        return reply.body


@pytest.fixture
def alice(dynamodb: Any) -> Client:
    return Client("alice", "ws1")


@pytest.fixture
def bob(dynamodb: Any) -> Client:
    return Client("bob", "ws1", name="Bob")


@pytest.fixture
def bot(dynamodb: Any) -> Client:
    return Client("bot-1", "ws1", scope=SERVICE, name=None)


@pytest.fixture
def mallory(dynamodb: Any) -> Client:
    """Same sub, another workspace."""
    return Client("alice", "ws2")


def assert_error(reply: Reply, status: int, code: str | None = None) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert set(reply.body) == {"error"} and set(reply.body["error"]) == {"code", "message"}, reply.body
    if code:
        assert reply.code == code, reply.body


SESSION_KEYS = {"id", "channel_id", "agent_id", "title", "status", "message_count", "metadata", "initial_context",
                "created_at", "expires_at", "last_message_at", "turn", "usage"}


# ---------------------------------------------------------------- channels


def test_create_and_get_channel(alice: Client) -> None:
    reply = alice.post("/v1/channels", {"name": "Support", "metadata": {"team": "billing", "n": 3}})
    assert reply.status == 201
    channel = reply.body
    assert channel["id"].startswith("ch_") and channel["name"] == "Support"
    assert channel["metadata"] == {"team": "billing", "n": 3} and channel["session_count"] == 0
    assert channel["created_at"].endswith("Z") and channel["agent_id"] is None
    alice.session(channel["id"])
    alice.session(channel["id"])
    got = alice.get(f"/v1/channels/{channel['id']}")
    assert got.status == 200 and got.body["session_count"] == 2 and got.body["name"] == "Support"


def test_channel_isolation(alice: Client, bob: Client, bot: Client, mallory: Client) -> None:
    channel = alice.channel(name="mine")
    path = f"/v1/channels/{channel['id']}"
    assert_error(bob.get(path), 404, "not_found")  # another user: not found, never forbidden
    assert_error(mallory.get(path), 404, "not_found")  # another workspace
    assert bot.get(path).status == 200  # a service principal sees every channel of its workspace
    assert_error(Client("bot-2", "ws2", scope=SERVICE).get(path), 404)  # ...but not another workspace's
    for client in (bob, mallory):
        assert_error(client.post(f"{path}/sessions", {}), 404)
        assert_error(client.get(f"{path}/sessions"), 404)
        assert_error(client.get(f"{path}/sessions/search", query={"q": "x"}), 404)
        assert_error(client.post(f"{path}/messages", {"content": "hi"}), 404)


def test_channel_errors(alice: Client) -> None:
    assert_error(alice.get("/v1/channels/ch_zzzzz"), 404)
    assert_error(alice.get("/v1/channels/nope"), 400, "bad_request")
    assert_error(alice.get("/v1/channels/ses_c1s"), 400, "bad_request")  # wrong kind
    assert_error(alice.post("/v1/channels", raw_body="{not json"), 400, "malformed_json")
    assert_error(alice.post("/v1/channels", {"agent_id": "agt_c1s"}), 404)  # unknown agent
    assert_error(alice.post("/v1/channels", {"colour": "red"}), 422, "validation_error")  # unknown field
    assert_error(alice.post("/v1/channels", {"metadata": {"nested": {"a": 1}}}), 422, "validation_error")
    too_many = {f"k{i}": i for i in range(51)}
    assert_error(alice.post("/v1/channels", {"metadata": too_many}), 422, "validation_error")
    big = {f"k{i}": "x" * 500 for i in range(20)}  # every value within limits, 10 KB in all
    reply = alice.post("/v1/channels", {"metadata": big})
    assert_error(reply, 413, "payload_too_large")
    assert "8192" in reply.body["error"]["message"]
    reply = alice.call("POST", "/v1/channels", raw_body="name=x", headers={"content-type": "text/plain"})
    assert_error(reply, 415, "unsupported_media_type")


def test_authentication_and_workspace_header(alice: Client) -> None:
    assert_error(alice.get("/v1/agents", auth=False), 401, "unauthorized")
    assert_error(Client("alice", "bad#ws").get("/v1/agents"), 401)
    assert_error(alice.get("/v1/agents", headers={"X-Workspace-Id": "ws2"}), 403, "forbidden")
    assert alice.get("/v1/agents", headers={"X-Workspace-Id": "ws1"}).status == 200


# ---------------------------------------------------------------- sessions


def test_create_session_shape_and_agent_default(alice: Client, bot: Client) -> None:
    agent = bot.post("/v1/agents", {"slug": "helper", "name": "Helper"}).body
    channel = alice.channel(agent_id=agent["id"])
    reply = alice.post(f"/v1/channels/{channel['id']}/sessions", {
        "metadata": {"ticket": "T-1", "vip": True, "score": 1.5, "none": None},
        "initial_context": "The customer wants a refund", "title": "Refund", "idle_timeout_seconds": 600})
    assert reply.status == 201
    session = reply.body
    assert set(session) == SESSION_KEYS
    assert session["id"].startswith("ses_") and session["channel_id"] == channel["id"]
    assert session["agent_id"] == agent["id"]  # the channel's default agent
    assert session["status"] == "active" and session["message_count"] == 0
    assert session["metadata"] == {"ticket": "T-1", "vip": True, "score": 1.5, "none": None}
    assert session["initial_context"] == "The customer wants a refund" and session["last_message_at"] is None
    from chatkeep import clock

    assert clock.parse_iso(session["expires_at"]) - clock.parse_iso(session["created_at"]) == pytest.approx(600, abs=1)
    got = alice.get(f"/v1/sessions/{session['id']}")
    assert got.status == 200 and got.body == session


def test_create_session_errors(alice: Client) -> None:
    channel = alice.channel()
    path = f"/v1/channels/{channel['id']}/sessions"
    assert_error(alice.post("/v1/channels/ch_c1s/sessions", {}), 404)  # REST: the channel must exist
    assert_error(alice.post(path, {"idle_timeout_seconds": 59}), 422)
    assert_error(alice.post(path, {"idle_timeout_seconds": 30 * 86400 + 1}), 422)
    assert_error(alice.post(path, {"title": "t" * 201}), 422)
    assert_error(alice.post(path, {"agent_id": "agt_c1s"}), 404)
    assert_error(alice.post(path, {"agent_id": "ch_c1s"}), 422)  # a malformed id inside a body
    assert_error(alice.post(path, {"initial_context": "x" * (32 * 1024 + 1)}), 413, "payload_too_large")
    assert_error(alice.post(path, {"metadata": {"k" * 65: 1}}), 422)
    assert_error(alice.post(path, {"metadata": {"k": "v" * 513}}), 422)
    assert_error(alice.post(path, {"metadata": {"k": "\ud800"}}), 422)  # lone surrogate: not storable


def test_update_session(alice: Client, bob: Client, bot: Client) -> None:
    agent = bot.post("/v1/agents", {"slug": "a1", "name": "A1"}).body
    session = alice.session(alice.channel()["id"], title="Old", metadata={"a": 1})
    path = f"/v1/sessions/{session['id']}"
    reply = alice.patch(path, {"title": "New"})
    assert reply.status == 200 and reply.body["title"] == "New" and reply.body["metadata"] == {"a": 1}
    reply = alice.patch(path, {"metadata": {"b": "2"}, "agent_id": agent["id"]})
    assert reply.body["metadata"] == {"b": "2"} and reply.body["agent_id"] == agent["id"]
    reply = alice.patch(path, {"title": None, "agent_id": None, "metadata": None})
    assert reply.body["title"] is None and reply.body["agent_id"] is None and reply.body["metadata"] == {}
    assert alice.patch(path, {}).status == 200
    assert_error(alice.patch(path, {"agent_id": "agt_c1s"}), 404)
    assert_error(alice.patch(path, {"channel_id": "ch_c1s"}), 422)  # cannot move a session
    assert_error(bob.patch(path, {"title": "mine now"}), 404)
    assert alice.get(path).body["title"] is None


def test_close_session_then_post_conflicts(alice: Client) -> None:
    session = alice.session(alice.channel()["id"])
    path = f"/v1/sessions/{session['id']}"
    alice.message(session["id"], "before closing")
    reply = alice.post(f"{path}/close")
    assert reply.status == 200 and reply.body["status"] == "closed"
    assert alice.post(f"{path}/close").status == 200  # closing twice is not an error
    reply = alice.post(f"{path}/messages", {"content": "too late"})
    assert_error(reply, 409, "session_closed")
    assert alice.get(path).body["status"] == "closed"  # still readable, with its history
    history = alice.get(f"{path}/messages")
    assert [m["content"] for m in history.body["data"]] == ["before closing"]


def test_expired_session_conflicts_and_stays_readable(alice: Client, clock_offset: Any) -> None:
    channel = alice.channel()
    session = alice.session(channel["id"], idle_timeout_seconds=60)
    alice.message(session["id"], "hello")
    clock_offset.advance(120)
    reply = alice.post(f"/v1/sessions/{session['id']}/messages", {"content": "anyone?"})
    assert_error(reply, 409, "session_expired")
    reply = alice.post(f"/v1/channels/{channel['id']}/messages", {"content": "x", "session_id": session["id"]})
    assert_error(reply, 409, "session_expired")
    got = alice.get(f"/v1/sessions/{session['id']}")
    assert got.status == 200 and got.body["status"] == "expired"
    listed = alice.get(f"/v1/channels/{channel['id']}/sessions", query={"status": "expired"})
    assert [s["id"] for s in listed.body["data"]] == [session["id"]] and listed.body["total_count"] == 1
    assert alice.get(f"/v1/channels/{channel['id']}/sessions", query={"status": "active"}).body["total_count"] == 0


def test_delete_session(alice: Client, bob: Client) -> None:
    session = alice.session(alice.channel()["id"])
    path = f"/v1/sessions/{session['id']}"
    assert_error(bob.delete(path), 404)
    reply = alice.delete(path)
    assert reply.status == 204 and reply.body == ""
    assert_error(alice.get(path), 404)
    assert_error(alice.delete(path), 404)
    assert_error(alice.get(f"{path}/messages"), 404)
    assert_error(alice.post(f"{path}/messages", {"content": "hi"}), 404)


def test_session_isolation(alice: Client, bob: Client, mallory: Client, bot: Client) -> None:
    session = alice.session(alice.channel()["id"])
    path = f"/v1/sessions/{session['id']}"
    for client in (bob, mallory):
        assert_error(client.get(path), 404)
        assert_error(client.get(f"{path}/messages"), 404)
        assert_error(client.post(f"{path}/messages", {"content": "hi"}), 404)
        assert_error(client.post(f"{path}/close"), 404)
        assert_error(client.patch(path, {"title": "x"}), 404)
        assert_error(client.delete(path), 404)
    assert bot.get(path).status == 200


def test_list_sessions_paging(alice: Client) -> None:
    channel = alice.channel()
    created = [alice.session(channel["id"], title=f"s{i}")["id"] for i in range(5)]
    alice.post(f"/v1/sessions/{created[0]}/close")
    path = f"/v1/channels/{channel['id']}/sessions"
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = alice.get(path, query=query)
        assert page.status == 200 and page.body["total_count"] == 5
        seen += [s["id"] for s in page.body["data"]]
        pages += 1
        if not page.body["has_more"]:
            assert page.body["next_cursor"] is None
            break
        cursor = page.body["next_cursor"]
    assert pages == 3 and sorted(seen) == sorted(created) and len(set(seen)) == 5
    # most recent activity first: the last created comes first
    assert seen[0] == created[-1]
    closed = alice.get(path, query={"status": "closed"})
    assert [s["id"] for s in closed.body["data"]] == [created[0]] and closed.body["total_count"] == 1
    assert_error(alice.get(path, query={"limit": "101"}), 422)
    assert_error(alice.get(path, query={"limit": "0"}), 422)
    assert_error(alice.get(path, query={"status": "open"}), 422)
    assert_error(alice.get(path, query={"cursor": "bm90LWEtY3Vyc29y"}), 400, "bad_request")


def test_search_sessions_routes(alice: Client) -> None:
    """Word matching is served by the stream-maintained index (exercised end to end in tests/e2e); here: the
    empty query lists by recency, and a query with no match answers an empty list."""
    channel = alice.channel()
    ids = [alice.session(channel["id"], title=f"t{i}")["id"] for i in range(3)]
    path = f"/v1/channels/{channel['id']}/sessions/search"
    everything = alice.get(path)
    assert everything.status == 200 and [s["id"] for s in everything.body["data"]] == ids[::-1]
    assert alice.get(path, query={"q": "nothing-matches-this"}).body == {"data": []}
    assert_error(alice.get(path, query={"q": "a b c d e f g h i"}), 422)  # too many words
    assert_error(alice.get("/v1/channels/ch_c1s/sessions/search", query={"q": "x"}), 404)


# ---------------------------------------------------------------- messages


def test_post_to_channel_creates_a_session(alice: Client) -> None:
    channel = alice.channel(name="inbox")
    reply = alice.post(f"/v1/channels/{channel['id']}/messages", {"content": "first!", "metadata": {"src": "web"}})
    assert reply.status == 201 and set(reply.body) == {"session", "message"}
    session, message = reply.body["session"], reply.body["message"]
    assert set(session) == SESSION_KEYS and session["channel_id"] == channel["id"]
    assert message["session_id"] == session["id"] and message["content"] == "first!"
    assert message["role"] == "user" and message["sender_id"] == "alice" and message["sender_name"] == "Alice"
    assert message["metadata"] == {"src": "web"} and message["id"].startswith("msg_")
    again = alice.post(f"/v1/channels/{channel['id']}/messages", {"content": "second", "session_id": session["id"]})
    assert again.status == 201 and again.body["session"]["id"] == session["id"]
    other = alice.channel()
    reply = alice.post(f"/v1/channels/{other['id']}/messages", {"content": "x", "session_id": session["id"]})
    assert_error(reply, 404)  # the session is not in that channel
    assert_error(alice.post(f"/v1/channels/{channel['id']}/messages", {"content": "   "}), 422)
    assert_error(alice.post(f"/v1/channels/{channel['id']}/messages", {}), 422)
    assert alice.get(f"/v1/channels/{channel['id']}").body["session_count"] == 1  # refused posts created nothing


def test_post_message_roles_and_limits(alice: Client, bot: Client) -> None:
    session = alice.session(alice.channel()["id"])
    path = f"/v1/sessions/{session['id']}/messages"
    assert_error(alice.post(path, {"content": "I am a bot", "role": "assistant"}), 403, "forbidden")
    reply = bot.post(path, {"content": "Hello, how can I help?", "role": "assistant"})
    assert reply.status == 201 and reply.body["role"] == "assistant" and reply.body["sender_id"] is None
    assert_error(alice.post(path, {"content": "x", "role": "system"}), 422)
    assert_error(alice.post(path, {"content": "é" * (16 * 1024 + 1)}), 413, "payload_too_large")
    assert alice.post(path, {"content": "a" * (32 * 1024)}).status == 201  # exactly at the limit
    assert_error(alice.post(path, {"content": ""}), 422)
    assert_error(alice.post(path, {"content": 42}), 422)


def test_router_debug_log_names_the_body_without_its_content(alice: Client, caplog: pytest.LogCaptureFixture
                                                              ) -> None:
    # Given Powertools' router logging at DEBUG (it formats each route's arguments into a line)
    session = alice.session(alice.channel()["id"])
    caplog.set_level("DEBUG", logger="aws_lambda_powertools.event_handler.api_gateway")
    # When a message with content and metadata is posted
    reply = alice.post(f"/v1/sessions/{session['id']}/messages",
                       {"content": "canary-content-7f3", "metadata": {"k": "canary-meta-7f3"}})
    # Then the route's arguments are logged by body name, without what the person wrote
    assert reply.status == 201
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("aws_lambda_powertools.event_handler")]
    assert any("PostSessionMessageIn(...)" in line for line in lines)
    assert not any("canary" in line for line in lines)


def test_history_pages_both_ways(alice: Client) -> None:
    session = alice.session(alice.channel()["id"])
    sid = session["id"]
    sent = [alice.message(sid, f"m{i}")["id"] for i in range(7)]
    path = f"/v1/sessions/{sid}/messages"

    newest = alice.get(path, query={"limit": "3"})  # default order: desc
    assert [m["content"] for m in newest.body["data"]] == ["m6", "m5", "m4"]
    assert newest.body["has_more"] is True
    assert newest.body["first_id"] == sent[6] and newest.body["last_id"] == sent[4]

    collected: list[str] = []
    before = None
    while True:
        query = {"limit": "3", **({"before": before} if before else {})}
        page = alice.get(path, query=query).body
        collected += [m["id"] for m in page["data"]]
        if not page["has_more"]:
            break
        before = page["last_id"]
    assert collected == sent[::-1]

    collected = []
    after = None
    while True:
        query = {"limit": "3", "order": "asc", **({"after": after} if after else {})}
        page = alice.get(path, query=query).body
        collected += [m["id"] for m in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert collected == sent

    window = alice.get(path, query={"order": "asc", "after": sent[1], "before": sent[5]}).body
    assert [m["content"] for m in window["data"]] == ["m2", "m3", "m4"] and window["has_more"] is False

    empty = alice.session(alice.channel()["id"])
    reply = alice.get(f"/v1/sessions/{empty['id']}/messages").body
    assert reply == {"data": [], "has_more": False, "first_id": None, "last_id": None}

    assert_error(alice.get(path, query={"order": "sideways"}), 422)
    assert_error(alice.get(path, query={"after": "nope"}), 400, "bad_request")
    assert_error(alice.get(path, query={"after": "msg_c1s"}), 404)  # not a message of this session
    other = alice.session(alice.channel()["id"])
    foreign = alice.message(other["id"], "elsewhere")["id"]
    assert_error(alice.get(path, query={"before": foreign}), 404)


# ---------------------------------------------------------------- agents


def test_agents(alice: Client, bot: Client, mallory: Client) -> None:
    assert_error(alice.post("/v1/agents", {"slug": "nope", "name": "Nope"}), 403, "forbidden")
    reply = bot.post("/v1/agents", {"slug": "support", "name": "Support bot", "model": "gpt-x",
                                    "temperature": 0.2, "system_prompt": "Be kind."})
    assert reply.status == 201
    agent = reply.body
    assert agent["id"].startswith("agt_") and agent["slug"] == "support" and agent["temperature"] == 0.2
    assert_error(bot.post("/v1/agents", {"slug": "support", "name": "Again"}), 409, "conflict")
    assert_error(bot.post("/v1/agents", {"slug": "Bad Slug", "name": "x"}), 422)
    assert_error(bot.post("/v1/agents", {"slug": "ok", "name": "x", "temperature": 2.5}), 422)
    assert_error(bot.post("/v1/agents", {"slug": "ok", "name": "  "}), 422)
    for i in range(3):
        bot.post("/v1/agents", {"slug": f"z{i}", "name": f"Z{i}"})
    assert agent["system_prompt"] == "Be kind." and bot.get(f"/v1/agents/{agent['id']}").body == agent
    # Users read agents, but not their system prompts (issue 18: configuration apps keep from end users).
    assert alice.get(f"/v1/agents/{agent['id']}").body == {**agent, "system_prompt": None}
    assert {a["system_prompt"] for a in alice.get("/v1/agents").body["data"]} == {None}
    assert "Be kind." in [a["system_prompt"] for a in bot.get("/v1/agents").body["data"]]
    slugs: list[str] = []
    cursor = None
    while True:
        page = alice.get("/v1/agents", query={"limit": "2", **({"cursor": cursor} if cursor else {})}).body
        slugs += [a["slug"] for a in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert slugs == ["support", "z0", "z1", "z2"]
    assert_error(mallory.get(f"/v1/agents/{agent['id']}"), 404)
    assert mallory.get("/v1/agents").body["data"] == []
    assert_error(alice.get("/v1/agents/agt_c1s"), 404)
    assert_error(alice.get("/v1/agents/agent-1"), 400)


# ---------------------------------------------------------------- idempotency


class ChatWrites:
    """Counts DynamoDB calls that touch the chat table (botocore before-call, with the request params)."""

    WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}

    def __init__(self, table: str) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, model: Any = None, params: Any = None, **_: Any) -> None:
        if model.name in self.WRITES and self.table in json.dumps(params, default=str):
            self.calls.append(model.name)


def test_idempotency_key_replays_the_first_response(alice: Client, bob: Client) -> None:
    from chatkeep import aws
    from chatkeep.settings import get_settings

    writes = ChatWrites(get_settings().chat_table_name)
    aws.dynamodb().meta.events.register("before-call.dynamodb.*", writes)
    channel = alice.channel()
    path = f"/v1/channels/{channel['id']}/messages"
    body = {"content": "pay invoice 42", "metadata": {"k": 1}}
    key = {"Idempotency-Key": "3b2f3c4e-0000-4000-8000-000000000001"}

    writes.calls.clear()
    first = alice.post(path, body, headers=key)
    assert first.status == 201 and writes.calls  # a session and a message were written
    assert "Idempotent-Replayed" not in first.headers

    writes.calls.clear()
    retry = alice.post(path, dict(reversed(list(body.items()))), headers=key)  # same JSON, other key order
    assert retry.status == 201 and retry.body == first.body
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert writes.calls == []  # nothing new written
    assert alice.get(f"/v1/channels/{channel['id']}").body["session_count"] == 1
    history = alice.get(f"/v1/sessions/{first.body['session']['id']}/messages").body["data"]
    assert len(history) == 1

    reused = alice.post(path, {"content": "something else"}, headers=key)
    assert_error(reused, 422, "idempotency_key_reused")
    other_channel = alice.channel()
    reused = alice.post(f"/v1/channels/{other_channel['id']}/messages", body, headers=key)
    assert_error(reused, 422, "idempotency_key_reused")  # same key, another channel: another request

    # Keys are per caller: bob's same key is a different request (and bob may not post in alice's channel).
    assert_error(bob.post(path, body, headers=key), 404)
    # Without a key, a retry is a new message.
    assert alice.post(path, {"content": "no key"}).status == 201
    assert alice.post(path, {"content": "no key"}).status == 201
    assert alice.get(f"/v1/channels/{channel['id']}").body["session_count"] == 3


def test_idempotency_on_every_post(alice: Client, bot: Client) -> None:
    key = {"Idempotency-Key": "k-every-post"}
    first = bot.post("/v1/agents", {"slug": "idem", "name": "Idem"}, headers=key)
    assert first.status == 201
    assert bot.post("/v1/agents", {"slug": "idem", "name": "Idem"}, headers=key).body == first.body  # not 409
    channel = alice.post("/v1/channels", {"name": "c"}, headers=key)
    assert alice.post("/v1/channels", {"name": "c"}, headers=key).body == channel.body
    cid = channel.body["id"]
    session = alice.post(f"/v1/channels/{cid}/sessions", {"title": "t"}, headers=key)
    assert alice.post(f"/v1/channels/{cid}/sessions", {"title": "t"}, headers=key).body == session.body
    sid = session.body["id"]
    message = alice.post(f"/v1/sessions/{sid}/messages", {"content": "hi"}, headers=key)
    assert alice.post(f"/v1/sessions/{sid}/messages", {"content": "hi"}, headers=key).body == message.body
    closed = alice.post(f"/v1/sessions/{sid}/close", headers=key)
    assert alice.post(f"/v1/sessions/{sid}/close", headers=key).body == closed.body
    assert len(alice.get(f"/v1/sessions/{sid}/messages").body["data"]) == 1
    assert alice.get(f"/v1/channels/{cid}").body["session_count"] == 1


def test_failed_requests_are_not_stored(alice: Client) -> None:
    """An error is not a result: the same key can be retried once the cause is gone."""
    channel = alice.channel()
    session = alice.session(channel["id"])
    key = {"Idempotency-Key": "retry-after-error"}
    path = f"/v1/sessions/{session['id']}/messages"
    assert_error(alice.post(path, {"content": "x" * (33 * 1024)}, headers=key), 413)
    assert_error(alice.post(path, {"content": "x" * (33 * 1024)}, headers=key), 413)


def test_idempotency_key_header_is_validated(alice: Client) -> None:
    reply = alice.post("/v1/channels", {}, headers={"Idempotency-Key": "x" * 256})
    assert_error(reply, 422)


# ---------------------------------------------------------------- request counts


def test_dynamodb_requests_per_warm_call(alice: Client, bot: Client, ddb_requests: Any) -> None:
    channel = alice.channel()
    session = alice.session(channel["id"])
    sid = session["id"]
    for i in range(3):
        alice.message(sid, f"warm-up {i}")
    alice.get(f"/v1/sessions/{sid}")
    alice.get(f"/v1/sessions/{sid}/messages")

    def count(call: Callable[[], Reply], expected_status: int) -> int:
        ddb_requests.reset()
        reply = call()
        assert reply.status == expected_status, reply.body
        return ddb_requests.total

    assert count(lambda: alice.get(f"/v1/sessions/{sid}"), 200) == 1
    assert count(lambda: alice.post(f"/v1/sessions/{sid}/messages", {"content": "hi"}), 201) <= 2
    assert count(lambda: bot.post(f"/v1/sessions/{sid}/messages", {"content": "yo", "role": "assistant"}), 201) <= 2
    assert count(lambda: alice.get(f"/v1/sessions/{sid}/messages"), 200) == 1
    assert count(lambda: alice.get(f"/v1/sessions/{sid}/messages", query={"limit": "2"}), 200) == 1
    # channel: one GetItem + the session count; a list page: one Query + the count (or none when complete), each
    # Query once per gsi1 key of the channel (its activity shards and its own key)
    from chatkeep.repository.keys import ACTIVITY_SHARDS

    gsi1_keys = ACTIVITY_SHARDS + 1
    assert count(lambda: alice.get(f"/v1/channels/{channel['id']}"), 200) <= 1 + gsi1_keys
    assert count(lambda: alice.get(f"/v1/channels/{channel['id']}/sessions"), 200) <= 2 * gsi1_keys
    ddb_requests.reset()
    alice.get(f"/v1/sessions/{sid}")
    assert ddb_requests.calls == {"GetItem": 1}


# ---------------------------------------------------------------- robustness, documents, handler


def test_unexpected_errors_are_masked(alice: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatkeep.service import ChatService

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret table name and a stack trace")

    monkeypatch.setattr(ChatService, "get_session_only", boom)
    reply = alice.get("/v1/sessions/ses_c1s")
    assert_error(reply, 500, "internal_error")
    assert "secret" not in json.dumps(reply.body) and "Traceback" not in json.dumps(reply.body)


def test_unknown_route(alice: Client) -> None:
    assert_error(alice.get("/v1/nowhere"), 404, "not_found")


def test_openapi_and_docs_need_no_auth(dynamodb: Any) -> None:
    anonymous = Client()
    reply = anonymous.get("/openapi.json", auth=False)
    assert reply.status == 200 and reply.body["openapi"].startswith("3.1")
    docs = anonymous.get("/docs", auth=False)
    assert docs.status == 200 and docs.headers["Content-Type"].startswith("text/html")
    html = docs.body
    assert "SwaggerUIBundle" in html
    for cdn in ("unpkg.com", "cdn.jsdelivr", "cdnjs", "<script src=\"http", "<link href=\"http"):
        assert cdn not in html


@pytest.mark.parametrize("accept_encoding", ["gzip, deflate, br", "GZIP", None])
def test_given_any_accept_encoding_when_a_json_route_answers_then_its_body_is_plain_json(
        alice: Client, accept_encoding: str | None) -> None:
    """Only /docs asks for compression: the response builder does not read Accept-Encoding for the rest."""
    headers = {"Accept-Encoding": accept_encoding} if accept_encoding else None
    reply = alice.post("/v1/channels", {"name": "plain"}, headers=headers)
    assert reply.status == 201 and reply.body["name"] == "plain"
    assert "Content-Encoding" not in reply.headers


def test_given_a_json_route_when_it_answers_then_the_request_headers_are_not_copied_for_compression(
        alice: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Powertools' builder copies the headers twice per response to read Accept-Encoding (~8 us); chatkeep's
    builder (chatkeep.powertools_compat.LazyCompressionResponseBuilder) reads it only for a route that compresses.
    Guards the override against a Powertools upgrade that stops using `_response_builder_class`."""
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    def copied(_event: Any) -> Any:
        raise AssertionError("resolved_headers_field read on a route that does not compress")

    monkeypatch.setattr(APIGatewayProxyEventV2, "resolved_headers_field", property(copied))
    reply = alice.post("/v1/channels", {"name": "no copy"}, headers={"Accept-Encoding": "gzip"})
    assert reply.status == 201, reply.body


def test_given_gzip_accepted_when_docs_are_asked_for_then_they_come_gzipped_and_otherwise_not(
        dynamodb: Any) -> None:
    import base64
    import gzip

    from chatkeep.rest.app import handler

    plain = handler(http_event("GET", "/docs"), None)
    assert plain["isBase64Encoded"] is False and "Content-Encoding" not in plain["headers"]
    zipped = handler(http_event("GET", "/docs", headers={"Accept-Encoding": "br, gzip"}), None)
    assert zipped["isBase64Encoded"] is True and zipped["headers"]["Content-Encoding"] == "gzip"
    assert gzip.decompress(base64.b64decode(zipped["body"])).decode() == plain["body"]


def test_functions_rest_api_handler(dynamodb: Any) -> None:
    """functions/rest_api/app.py is the Lambda entry point: thin, and it runs with a Lambda context."""
    from chatkeep_local.harness import LambdaContext, declared_handler

    event = http_event("POST", "/v1/channels", body={"name": "via lambda"}, claims=claims_for(),
                       headers={"Idempotency-Key": "lambda-1"})
    out = declared_handler("RestApiFunction")(event, LambdaContext())
    assert out["statusCode"] == 201 and json.loads(out["body"])["name"] == "via lambda"
