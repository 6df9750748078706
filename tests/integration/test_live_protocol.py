"""graphql-transport-ws through RealtimeFunction's declared handler, behind the local WebSocket API emulator (each
message its own invocation, run concurrently, as API Gateway does): every message type and every close code, and
the token checks of connection_init (docs/live-updates.md, "Connecting" and "Closes")."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from chatkeep.repository import keys
from chatkeep.repository.codec import from_item
from chatkeep.settings import get_settings
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.integration.live_support import SESSION_QUERY, LiveWorld, close_notice


@pytest.fixture
def session_id(live: LiveWorld) -> int:
    return live.service.create_session(live.principal("alice"), 100, title="Live").id


def items_of(live: LiveWorld, connection_id: str) -> list[dict[str, Any]]:
    resp = live.client.query(TableName=get_settings().connections_table_name, ConsistentRead=True,
                             KeyConditionExpression="pk = :pk",
                             ExpressionAttributeValues={":pk": {"S": keys.connection_pk(connection_id)}})
    return [from_item(i) for i in resp["Items"]]


def assert_closed_with(client: Any, code: int, reason_part: str = "", op: str = "connection") -> dict[str, Any]:
    seen, received = client.closed()
    notice = close_notice(seen)
    assert notice["closeCode"] == code and reason_part in notice["closeReason"], notice
    assert notice["id"] == op
    assert received == 1000  # API Gateway's DeleteConnection: the code travels in the notice
    return notice


# ------------------------------------------------------------------ connecting


def test_given_the_subprotocol_when_connecting_then_it_is_echoed_and_the_record_expires_within_2_hours(live):
    with connect(live.api.url, subprotocols=["graphql-transport-ws"]) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        (connection_id,) = live.api.connection_ids()
        (record,) = items_of(live, connection_id)
        assert 2 * 3600 <= record["expires_at"] - record["connected_at"] <= 2 * 3600 + 600


def test_given_only_another_subprotocol_when_connecting_then_the_upgrade_is_refused(live):
    with pytest.raises(InvalidStatus) as refused, connect(live.api.url, subprotocols=["graphql-ws"]):
        pass
    assert refused.value.response.status_code == 400


def test_given_a_valid_token_when_initialising_then_acknowledged_and_the_caller_is_recorded(live):
    with live.connect(live.token("alice", name="Alice")):
        (connection_id,) = live.api.connection_ids()
        (record,) = items_of(live, connection_id)
        assert record["acked"] is True and record["sub"] == "alice" and record["ws"] == "ws1"
        assert record["name"] == "Alice" and record["svc"] is False and record["token_exp"] > time.time()


def test_given_a_service_token_when_initialising_then_the_connection_is_a_service_principal(live):
    with live.connect(live.token("bot", scope="chatkeep/service")):
        (record,) = items_of(live, live.api.connection_ids()[0])
        assert record["svc"] is True


# ------------------------------------------------------------------ token failures: 4401, 4403

BAD_TOKENS = {
    "missing": (lambda w: None, "missing token"),
    "not a jwt": (lambda w: "not-a-token", "malformed"),
    "wrong signature": (lambda w: w.token("alice", secret="another-secret"), "signature is invalid"),
    "expired": (lambda w: w.token("alice", ttl=-10), "expired"),
    "not yet valid": (lambda w: w.token("alice", nbf=int(time.time()) + 600), "not valid yet"),
    "other issuer": (lambda w: w.token("alice", issuer="https://evil.example.com"), "issuer"),
    "other audience": (lambda w: w.token("alice", audience="someone-else"), "audience"),
    "no workspace": (lambda w: w.token("alice", workspace=None), "workspace_id"),
}


@pytest.mark.parametrize("case", BAD_TOKENS, ids=list(BAD_TOKENS))
def test_given_a_bad_token_when_initialising_then_closed_4401(live, case):
    make, reason = BAD_TOKENS[case]
    with live.connect(init=False) as client:
        client.send({"type": "connection_init", "payload": {"authorization": make(live)} if make(live) else {}})
        assert_closed_with(client, 4401, reason)
    assert live.api.connection_ids() == []


def _forged(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    import base64

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(claims)}.{signature}"


@pytest.mark.parametrize("header, reason", [
    ({"alg": "none", "kid": "chatkeep-local-dev"}, "signing method none"),
    ({"alg": "HS512", "kid": "chatkeep-local-dev"}, "signing method HS512"),
    ({"alg": "RS256", "kid": "chatkeep-local-dev"}, "signing method RS256"),
    ({"alg": "HS256"}, "kid"),
    ({"alg": "HS256", "kid": "someone-elses-key"}, "not in the issuer's JWKS"),
], ids=["alg none", "HS512 on the oct key", "RS256 on the oct key", "no kid", "unknown kid"])
def test_given_a_token_the_jwks_does_not_sign_when_initialising_then_closed_4401(live, header, reason):
    claims = {"sub": "alice", "workspace_id": "ws1", "iss": "chatkeep-local", "aud": "chatkeep",
              "exp": int(time.time()) + 600}
    with live.connect(init=False) as client:
        client.send({"type": "connection_init", "payload": {"authorization": _forged(header, claims, "c2ln")}})
        assert_closed_with(client, 4401, reason)


def test_given_another_workspace_named_when_initialising_then_closed_4403(live):
    with live.connect(init=False) as client:
        client.send({"type": "connection_init", "payload": {
            "authorization": f"Bearer {live.token('alice')}", "x-workspace-id": "ws2"}})
        assert_closed_with(client, 4403, "X-Workspace-Id")


# ------------------------------------------------------------------ init: 4408, 4429


def test_given_a_connection_init_later_than_10_seconds_when_it_arrives_then_closed_4408(live):
    with live.connect(init=False) as client:
        live.clock.offset += 11
        client.send({"type": "connection_init", "payload": {"authorization": live.token("alice")}})
        assert_closed_with(client, 4408, "initialisation timeout")


def test_given_an_acknowledged_connection_when_initialising_again_then_closed_4429(live):
    with live.connect(live.token("alice")) as client:
        client.send({"type": "connection_init", "payload": {"authorization": live.token("alice")}})
        assert_closed_with(client, 4429, "Too many initialisation requests")


def test_given_two_connection_inits_sent_at_once_when_run_concurrently_then_one_ack_and_4429(live):
    with live.connect(init=False) as client:
        token = live.token("alice")
        for _ in range(2):
            client.send({"type": "connection_init", "payload": {"authorization": token}})
        seen, received = client.closed()
        assert [m for m in seen if m["type"] == "connection_ack"] in ([], [{"type": "connection_ack"}])
        assert close_notice(seen)["closeCode"] == 4429 and received == 1000


# ------------------------------------------------------------------ ping, pong, invalid messages: 4400


def test_given_a_ping_before_or_after_init_then_a_pong_echoing_its_payload_and_a_pong_is_ignored(live):
    with live.connect(init=False) as client:
        client.send({"type": "ping", "payload": {"t": 1}})
        assert client.recv() == {"type": "pong", "payload": {"t": 1}}
        client.send({"type": "pong"})
        assert client.init(live.token("alice")) == {"type": "connection_ack"}
        client.send({"type": "ping"})
        assert client.recv() == {"type": "pong"}


INVALID = {
    "not json": "{nope",
    "not an object": "[1, 2]",
    "no type": {"id": "1"},
    "unknown type": {"type": "start", "id": "1", "payload": {"query": "{ x }"}},
    "subscribe without id": {"type": "subscribe", "payload": {"query": "subscription { x }"}},
    "subscribe without query": {"id": "1", "type": "subscribe", "payload": {"variables": {}}},
    "subscribe variables not an object": {"id": "1", "type": "subscribe", "payload": {"query": "q", "variables": 3}},
    "complete without id": {"type": "complete"},
    "init payload not an object": {"type": "connection_init", "payload": "token"},
    "an id of 129 characters": {"id": "x" * 129, "type": "complete"},
    "a server message (next)": {"id": "1", "type": "next", "payload": {}},
    "a server message (connection_ack)": {"type": "connection_ack"},
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_given_an_invalid_message_then_closed_4400(live, case):
    with live.connect(live.token("alice")) as client:
        client.send(INVALID[case])
        assert_closed_with(client, 4400)


def test_given_a_binary_frame_then_closed_4400(live):
    with live.connect(live.token("alice")) as client:
        client.ws.send(b'{"type": "ping"}')
        assert_closed_with(client, 4400, "binary")


# ------------------------------------------------------------------ subscribe, complete: 4401, 4409


def test_given_no_ack_when_subscribing_then_closed_4401(live, session_id):
    with live.connect(init=False) as client:
        client.subscribe("1", SESSION_QUERY, {"s": session_id})
        assert_closed_with(client, 4401, "Unauthorized")


def test_given_a_live_subscription_when_subscribing_with_its_id_then_closed_4409(live, session_id):
    with live.connect(live.token("alice")) as client:
        client.subscribe("dup", SESSION_QUERY, {"s": session_id})
        live.subscribed("dup")
        client.subscribe("dup", SESSION_QUERY, {"s": session_id})
        assert_closed_with(client, 4409, "Subscriber for dup already exists", op="dup")


def test_given_a_completed_subscription_when_subscribing_again_with_its_id_then_it_is_live_again(live, session_id):
    with live.connect(live.token("alice")) as client:
        client.subscribe("again", SESSION_QUERY, {"s": session_id})
        first = live.subscribed("again")
        client.send({"id": "again", "type": "complete"})
        assert "topic" not in live.subscribed("again", "completed")
        client.subscribe("again", SESSION_QUERY, {"s": session_id})
        assert live.subscribed("again")["at"] > first["at"]


def test_given_a_complete_run_before_its_subscribe_when_both_arrive_then_the_subscription_never_starts(
        live, session_id):
    # Invocations of one connection run in any order: the complete (received second) runs first.
    from chatkeep.realtime.handler import RealtimeHandler

    with live.connect(live.token("alice")):
        (connection_id,) = live.api.connection_ids()
        handler = RealtimeHandler()

        def message(body: dict[str, Any], at_ms: int) -> dict[str, Any]:
            return {"requestContext": {"eventType": "MESSAGE", "connectionId": connection_id, "routeKey": "$default",
                                       "requestTimeEpoch": at_ms}, "body": json.dumps(body)}

        now = int(time.time() * 1000)
        handler.handle(message({"id": "late", "type": "complete"}, now + 5))
        handler.handle(message({"id": "late", "type": "subscribe", "payload": {
            "query": SESSION_QUERY, "variables": {"s": session_id}}}, now))
        (sub,) = [i for i in items_of(live, connection_id) if i["sk"] == "S#late"]
        assert sub["state"] == "completed" and "topic" not in sub


def test_given_a_subscribe_of_an_invalid_document_then_an_error_message_and_the_socket_stays_open(live):
    with live.connect(live.token("alice")) as client:
        client.subscribe("bad", "subscription { nope }")
        error = client.recv()
        assert error["type"] == "error" and error["id"] == "bad"
        assert error["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert client.ping_barrier() == []


@pytest.mark.parametrize("query, code", [
    ("query { getTodoChatSessions(todoId: 1) { totalCount } }", "OPERATION_NOT_SUPPORTED"),
    ("mutation { closeTodoChatSession(id: 1) { id } }", "OPERATION_NOT_SUPPORTED"),
    ("subscription($s: Float!) { onTodoChatMessage(sessionId: $s) { session { messages { id } } } }",
     "BAD_USER_INPUT"),
    ("subscription($s: Float!) { onTodoChatMessage(sessionId: $s) { kind } }", "BAD_USER_INPUT"),  # no variable
], ids=["query", "mutation", "session history", "missing variable"])
def test_given_an_operation_the_socket_does_not_serve_then_an_error_message(live, query, code):
    with live.connect(live.token("alice")) as client:
        client.subscribe("op", query)
        error = client.recv()
        assert error["type"] == "error" and error["payload"][0]["extensions"]["code"] == code, error
        assert live.subscription_items() == []


def test_given_a_token_that_expired_since_the_ack_when_subscribing_then_closed_4401(live, session_id):
    with live.connect(live.token("alice", ttl=2)) as client:
        from chatkeep import clock

        before = clock.offset()
        clock.set_offset(before + 5)
        try:
            client.subscribe("1", SESSION_QUERY, {"s": session_id})
            assert_closed_with(client, 4401, "expired")
        finally:
            clock.set_offset(before)


def test_given_a_closed_socket_when_disconnected_then_its_records_are_forgotten(live, session_id):
    with live.connect(live.token("alice")) as client:
        client.subscribe("1", SESSION_QUERY, {"s": session_id})
        live.subscribed("1")
        (connection_id,) = live.api.connection_ids()
        assert len(items_of(live, connection_id)) == 2
        client.close()
    live.wait_for(lambda: items_of(live, connection_id) == [], "$disconnect forgot the connection")


def test_given_a_subscription_posted_to_the_http_api_then_400_naming_the_websocket(dynamodb, session_id):
    from chatkeep.graphql.server import handle
    from chatkeep_local.harness import claims_for, http_event

    response = handle(http_event("POST", "/graphql", body={"query": SESSION_QUERY, "variables": {"s": session_id}},
                                 claims=claims_for("alice")))
    error = json.loads(response["body"])["errors"][0]
    assert response["statusCode"] == 400 and error["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in error["message"]
