"""Live updates in process: RealtimeFunction's declared handler behind the local WebSocket API emulator (real
`websockets` clients, real boto3 pushes to its @connections API), moto's tables, the chat table's stream read and
fed to the stream processor. The token path is the deployed one: JWT_JWKS_URL names a file holding
`chatkeep dev`'s JWKS (its dev secret as an `oct` key), read by chatkeep.realtime.tokens like an issuer's.

`LiveWorld` (built by a test module's fixture) has: `token(sub, ws, ...)`, `connect(token=..., init=True)` -> a
`LiveClient` (`send`, `recv`, `subscribe`, `ping_barrier`, `closed`), `settle()` (deliver the stream until quiet),
`service` and `principal(...)`, `api` (the emulator: `pushes`, `connection_ids()`), `clock` (the emulator's)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chatkeep.auth import Principal
from chatkeep.repository.dynamodb import DynamoDBChatRepository
from chatkeep.service import ChatService
from chatkeep.settings import get_settings
from chatkeep.stream.processor import CoalescingBatchProcessor, handle
from chatkeep_local.harness import declared_handler, reset_caches
from chatkeep_local.jwt_auth import dev_jwks, make_token
from chatkeep_local.stream_reader import StreamReader
from chatkeep_local.websocket_api import WebSocketApi
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

WAIT = 10.0  # how long to wait for something another thread does (never a timing assertion)
SUBPROTOCOL = "graphql-transport-ws"
SESSION_QUERY = """subscription Live($s: Float!) { onTodoChatMessage(sessionId: $s) {
  kind sessionId delta offset truncated message { id message isBotReply status sentBy { id firstName } }
  session { id title status } } }"""
TODO_QUERY = """subscription List($t: Float!) { onTodoChatSessions(todoId: $t) {
  kind todoId truncated session { id title status messageCount } } }"""


class Clock:
    """The emulator's clock (connectedAt, requestTimeEpoch, its timeouts): real time, moved on demand."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class LiveClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    def send(self, message: dict[str, Any] | str) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=timeout))

    def init(self, token: str | None, **payload: Any) -> dict[str, Any]:
        body: dict[str, Any] = dict(payload)
        if token is not None:
            body["authorization"] = f"Bearer {token}"
        self.send({"type": "connection_init", "payload": body})
        return self.recv()

    def subscribe(self, op: str, query: str, variables: dict[str, Any] | None = None,
                  operation_name: str | None = None) -> None:
        payload: dict[str, Any] = {"query": query, "variables": variables}
        if operation_name:
            payload["operationName"] = operation_name
        self.send({"id": op, "type": "subscribe", "payload": payload})

    def ping_barrier(self) -> list[dict[str, Any]]:
        """Everything pushed before now: a ping's pong comes after what was already posted to this connection."""
        self.send({"type": "ping", "payload": {"barrier": True}})
        seen = []
        while True:
            message = self.recv()
            if message == {"type": "pong", "payload": {"barrier": True}}:
                return seen
            seen.append(message)

    def events(self) -> list[dict[str, Any]]:
        """The `next` payloads' data received before now (a ping barrier)."""
        return [m["payload"]["data"] for m in self.ping_barrier() if m["type"] == "next"]

    def closed(self) -> tuple[list[dict[str, Any]], int | None]:
        """What came before the socket closed, and the close code the client saw."""
        seen = []
        try:
            while True:
                seen.append(json.loads(self.ws.recv(timeout=WAIT)))
        except ConnectionClosed as closed:
            return seen, closed.rcvd.code if closed.rcvd else None

    def close(self) -> None:
        self.ws.close()


class LiveWorld:
    def __init__(self, client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.client = client
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps(dev_jwks()))
        self.clock = Clock()
        handler = declared_handler("RealtimeFunction")
        self.api = WebSocketApi({"$connect": handler, "$default": handler, "$disconnect": handler}, stage="ws",
                                route_selection_expression="$request.body.type", clock=self.clock).start()
        for name, value in {"WEBSOCKET_MANAGEMENT_ENDPOINT": self.api.management_endpoint,
                            "JWT_ISSUER": "chatkeep-local", "JWT_AUDIENCE": "chatkeep",
                            "JWT_JWKS_URL": jwks.as_uri()}.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        self.service = ChatService(DynamoDBChatRepository())
        self.reader = StreamReader(get_settings().chat_table_name)
        self.batches: list[dict[str, Any]] = []
        self.processors: list[CoalescingBatchProcessor] = []

    def stop(self) -> None:
        self.api.stop()

    def token(self, sub: str, workspace: str = "ws1", **kw: Any) -> str:
        return make_token(sub, workspace, **kw)

    @staticmethod
    def principal(sub: str = "alice", workspace: str = "ws1", *, service: bool = False) -> Principal:
        scopes = frozenset({"chatkeep/service"}) if service else frozenset()
        return Principal(sub=sub, workspace_id=workspace, name=sub.title(), scopes=scopes, is_service=service)

    @contextlib.contextmanager
    def connect(self, token: str | None = None, *, init: bool = True, subprotocols: list[str] | None = None
                ) -> Iterator[LiveClient]:
        with connect(self.api.url, subprotocols=subprotocols or [SUBPROTOCOL], open_timeout=WAIT) as ws:
            client = LiveClient(ws)
            if init:
                assert client.init(token) == {"type": "connection_ack"}
            yield client

    def subscription_items(self) -> list[dict[str, Any]]:
        """Every subscription item of the connections table (live ones and tombstones)."""
        from chatkeep.repository.codec import from_item

        items = self.client.scan(TableName=get_settings().connections_table_name)["Items"]
        return [from_item(i) for i in items if i["sk"]["S"].startswith("S#")]

    def wait_for(self, check: Any, what: str) -> Any:
        """Poll `check()` until it is truthy: for what an invocation that pushes nothing did (never a timing
        assertion: the deadline only ends a test that would hang)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"never happened: {what}")

    def subscribed(self, op: str, state: str = "live") -> dict[str, Any]:
        """Wait until subscription `op` is in the table in `state` (a subscribe answers nothing on success)."""
        return self.wait_for(lambda: next((s for s in self.subscription_items()
                                           if s["sk"] == f"S#{op}" and s.get("state") == state), None),
                             f"subscription {op} {state}")

    def deliver(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        processor = CoalescingBatchProcessor()
        self.processors.append(processor)
        response = handle({"Records": records}, None, processor=processor)
        self.batches.append(response)
        return response

    def settle(self) -> list[dict[str, Any]]:
        """Deliver the stream until quiet (the processor's own count updates come back as records)."""
        delivered = []
        for _ in range(6):
            records = self.reader.read_new()
            if not records:
                return delivered
            delivered += records
            assert self.deliver(records) == {"batchItemFailures": []}
        raise AssertionError("the stream does not settle")


def data_of(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "next", message
    return message["payload"]["data"]


def close_notice(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The `extensions` of the close notice among `messages` (the last `error` before the close)."""
    notices = [m for m in messages if m["type"] == "error"
               and "closeCode" in (m["payload"][0].get("extensions") or {})]
    assert notices, messages
    return notices[-1]["payload"][0]["extensions"] | {"id": notices[-1]["id"]}
