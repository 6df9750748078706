"""Live updates over `chatkeep dev`: its WebSocket API emulator, the realtime function, the stream processor's
fan-out and the turn worker's chunks, with clients that know nothing of chatkeep: Python's `websockets` and Apollo
Client 4 (GraphQLWsLink + graphql-ws, tests/e2e/apollo/live_client.mjs). Each receives a message posted over REST
and the agent's streamed reply (the local Bedrock stand-in answers)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from chatkeep import ids
from websockets.sync.client import connect

from tests.e2e.test_apollo_client import APOLLO, require_node

pytestmark = pytest.mark.e2e
SUBSCRIPTION = """subscription Live($s: Float!) { onTodoChatMessage(sessionId: $s) {
  kind delta offset message { id message isBotReply status sentBy { firstName } } } }"""
FINAL = {"REPLY_COMPLETED", "REPLY_FAILED", "REPLY_CANCELLED"}


@dataclass
class AgentSession:
    """A user's session with a bedrock agent, in a workspace of its own."""

    rest_id: str
    number: int
    token: str
    workspace: str


def agent_session(local_api: Any) -> AgentSession:
    ws = f"ws-live-{uuid.uuid4().hex[:8]}"
    user = local_api.token("live-user", ws, name="Lin")
    bot = local_api.token("live-bot", ws, scope="chatkeep/service")
    agent = local_api.request("POST", "/v1/agents", bot, json={"slug": "helper", "name": "Helper",
                                                                "provider": "bedrock",
                                                                "model": "amazon.nova-lite-v1:0"})
    assert agent.status_code == 201, agent.text
    channel = local_api.request("POST", "/v1/channels", user, json={"agent_id": agent.json()["id"]}).json()
    session = local_api.request("POST", f"/v1/channels/{channel['id']}/sessions", user, json={}).json()
    return AgentSession(session["id"], ids.decode(ids.Kind.SESSION, session["id"]), user, ws)


def wait_subscribed(local_api: Any, session: AgentSession) -> None:
    """Until the session has a subscriber in the connections table (a subscribe answers nothing when it works)."""
    import time

    table = boto3.client("dynamodb", endpoint_url=local_api.health()["dynamodb"], region_name="us-east-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing")
    topic = f"W#{session.workspace}#S#{session.number:010d}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = table.query(TableName="ConnectionsTable", IndexName="by_topic",
                            KeyConditionExpression="topic = :t", ExpressionAttributeValues={":t": {"S": topic}})
        if found["Count"]:
            return
        time.sleep(0.05)
    raise AssertionError("the subscription never appeared")


def post(local_api: Any, session: AgentSession, text: str) -> dict[str, Any]:
    response = local_api.request("POST", f"/v1/sessions/{session.rest_id}/messages", session.token,
                                 json={"content": text})
    assert response.status_code == 201, response.text
    return response.json()


def assert_message_then_streamed_reply(events: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """The user's message, then the reply's chunks (contiguous deltas), then its end with the whole text."""
    assert events[0]["kind"] == "MESSAGE_CREATED" and events[0]["message"]["message"] == text
    assert events[0]["message"]["sentBy"]["firstName"] == "Lin" and events[0]["message"]["isBotReply"] is False
    chunks = [e for e in events if e["kind"] == "REPLY_CHUNK"]
    final = events[-1]
    assert final["kind"] == "REPLY_COMPLETED" and final["message"]["status"] == "COMPLETE"
    assert chunks and all(e["kind"] == "REPLY_CHUNK" for e in events[1:-1])
    streamed = ""
    for chunk in chunks:
        assert chunk["offset"] == len(streamed)
        streamed += chunk["delta"]
        assert chunk["message"]["message"] == streamed and chunk["message"]["status"] == "STREAMING"
    assert streamed == final["message"]["message"] and text in streamed
    assert {e["message"]["id"] for e in events[1:]} == {final["message"]["id"]}
    return final


def test_given_a_websockets_client_when_a_message_is_posted_over_rest_then_it_gets_it_and_the_streamed_reply(
        local_api):
    session = agent_session(local_api)
    url = local_api.health()["websocket"]["url"]
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=30) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {session.token}"}}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "connection_ack"}
        ws.send(json.dumps({"id": "live", "type": "subscribe",
                            "payload": {"query": SUBSCRIPTION, "variables": {"s": session.number}}}))
        wait_subscribed(local_api, session)
        post(local_api, session, "Which plan am I on?")
        events = []
        while not events or events[-1]["kind"] not in FINAL:
            message = json.loads(ws.recv(timeout=60))
            assert message["type"] == "next" and message["id"] == "live", message
            events.append(message["payload"]["data"]["onTodoChatMessage"])
    assert_message_then_streamed_reply(events, "Which plan am I on?")


def test_given_a_bad_token_when_a_websockets_client_initialises_then_the_close_notice_says_4401(local_api):
    url = local_api.health()["websocket"]["url"]
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=30) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer nope"}}))
        notice = json.loads(ws.recv(timeout=30))
    assert notice["type"] == "error" and notice["payload"][0]["extensions"]["closeCode"] == 4401


def test_given_apollo_client_4_with_graphql_ws_link_when_a_message_is_posted_over_rest_then_it_gets_the_reply(
        local_api):
    node = require_node()
    session = agent_session(local_api)
    env = {**os.environ, "BASE_URL": local_api.base_url, "WS_URL": local_api.health()["websocket"]["url"],
           "TOKEN": session.token, "SESSION_ID": str(session.number)}
    with subprocess.Popen([node, "live_client.mjs"], cwd=APOLLO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert json.loads(first) == {"subscribed": True}, first + (proc.stderr.read() if proc.stderr else "")
        wait_subscribed(local_api, session)
        post(local_api, session, "Hello from Apollo")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    final = assert_message_then_streamed_reply(result["events"], "Hello from Apollo")
    assert [m["message"] for m in result["history"]] == ["Hello from Apollo", final["message"]["message"]]
    # A bad token: chatkeep's close notice reaches the client before any ack; graphql-ws then stops for good.
    (notice,) = [m for m in result["refused"]["notices"] if m["type"] == "error"]
    assert notice["payload"][0]["extensions"]["closeCode"] == 4401
    # (graphql-ws closes the socket itself, 4004, not retried; Apollo hands the subscriber the error)
    assert "First message cannot be of type error" in json.dumps(result["refused"]["outcome"])
    print(json.dumps({"apollo": result}, indent=1)[:6000])
