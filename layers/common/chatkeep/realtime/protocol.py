"""The graphql-transport-ws protocol (the graphql-ws library's PROTOCOL.md): what a client may send, what the server
sends, and the close codes.

    client -> server   connection_init {payload?}, ping {payload?}, pong {payload?}, subscribe {id, payload},
                       complete {id}
    server -> client   connection_ack, ping, pong {payload?}, next {id, payload}, error {id, payload: [errors]},
                       complete {id}

A message that is not one of these, or not shaped as the protocol says, closes the socket with 4400. Messages are
checked as graphql-ws's own `validateMessage` checks them, so what its client accepts, this server accepts.

Closing with a code: API Gateway cannot (its DeleteConnection always closes with 1000), so a close is sent first as
a last `error` message naming the close it stands for (`extensions.closeCode`, `closeReason`), then the connection
is deleted (docs/live-updates.md, "Closes"). graphql-ws clients receive it before their connection_ack as an
unexpected first message and stop for good (close 4004, not retried); after the ack, the operation it names fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SUBPROTOCOL = "graphql-transport-ws"
MAX_ID_CHARS = 128

BAD_REQUEST = 4400
UNAUTHORIZED = 4401
FORBIDDEN = 4403
INIT_TIMEOUT = 4408
SUBSCRIBER_EXISTS = 4409
TOO_MANY_INITS = 4429
CLOSE_CODES = {BAD_REQUEST: "BAD_REQUEST", UNAUTHORIZED: "UNAUTHENTICATED", FORBIDDEN: "FORBIDDEN",
               INIT_TIMEOUT: "INIT_TIMEOUT", SUBSCRIBER_EXISTS: "SUBSCRIBER_EXISTS", TOO_MANY_INITS: "RATE_LIMITED"}
CONNECTION_NOTICE_ID = "connection"  # the `id` of a close notice that concerns no operation


class Close(Exception):
    """The socket must close with `code` and `reason` (e.g. 4401 "Unauthorized"). `operation`: the id the close
    concerns (4409), if any."""

    def __init__(self, code: int, reason: str, operation: str | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code, self.reason, self.operation = code, reason[:123], operation  # a close reason is <= 123 bytes


@dataclass(frozen=True, slots=True)
class ClientMessage:
    type: str
    id: str | None = None
    payload: dict[str, Any] | None = None


def _object_or_none(message: dict[str, Any], kind: str) -> dict[str, Any] | None:
    payload = message.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise Close(BAD_REQUEST, f'Invalid message: "{kind}" payload must be an object or null')
    return payload


def _operation_id(message: dict[str, Any], kind: str) -> str:
    value = message.get("id")
    if not isinstance(value, str) or not value:
        raise Close(BAD_REQUEST, f'Invalid message: "{kind}" requires a non-empty string id')
    if len(value) > MAX_ID_CHARS:
        raise Close(BAD_REQUEST, f'Invalid message: "{kind}" id is longer than {MAX_ID_CHARS} characters')
    return value


def parse(body: str | None) -> ClientMessage:
    """A client's message, checked; raises Close(4400) for anything the protocol does not allow."""
    try:
        message = json.loads(body or "")
    except (ValueError, RecursionError):
        raise Close(BAD_REQUEST, "Invalid message received: not JSON") from None
    if not isinstance(message, dict):
        raise Close(BAD_REQUEST, "Invalid message received: not an object")
    kind = message.get("type")
    if not isinstance(kind, str) or not kind:
        raise Close(BAD_REQUEST, "Invalid message received: no 'type'")
    if kind in ("connection_init", "ping", "pong"):
        return ClientMessage(kind, payload=_object_or_none(message, kind))
    if kind == "complete":
        return ClientMessage(kind, id=_operation_id(message, kind))
    if kind == "subscribe":
        op = _operation_id(message, kind)
        payload = message.get("payload")
        if not isinstance(payload, dict):
            raise Close(BAD_REQUEST, 'Invalid message: "subscribe" payload must be an object')
        if not isinstance(payload.get("query"), str):
            raise Close(BAD_REQUEST, 'Invalid message: "subscribe" payload needs a string query')
        for name, kinds in (("variables", dict), ("operationName", str), ("extensions", dict)):
            if payload.get(name) is not None and not isinstance(payload[name], kinds):
                raise Close(BAD_REQUEST, f'Invalid message: "subscribe" payload.{name} has the wrong type')
        return ClientMessage(kind, id=op, payload=payload)
    if kind in ("connection_ack", "next", "error"):
        raise Close(BAD_REQUEST, f"Unexpected message of type {kind} received")
    raise Close(BAD_REQUEST, f"Invalid message 'type' property \"{kind[:40]}\"")


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def ack() -> bytes:
    return encode({"type": "connection_ack"})


def pong(payload: dict[str, Any] | None) -> bytes:
    return encode({"type": "pong", "payload": payload} if payload else {"type": "pong"})


def error(operation: str, errors: list[dict[str, Any]]) -> bytes:
    return encode({"id": operation, "type": "error", "payload": errors})


def complete(operation: str) -> bytes:
    return encode({"id": operation, "type": "complete"})


def close_notice(close: Close) -> bytes:
    """The `error` message that stands for a close API Gateway cannot send (see the module docstring)."""
    return error(close.operation or CONNECTION_NOTICE_ID, [{
        "message": f"{close.code}: {close.reason}",
        "extensions": {"code": CLOSE_CODES.get(close.code, "BAD_REQUEST"), "closeCode": close.code,
                       "closeReason": close.reason}}])


__all__ = ["BAD_REQUEST", "CONNECTION_NOTICE_ID", "FORBIDDEN", "INIT_TIMEOUT", "SUBPROTOCOL", "SUBSCRIBER_EXISTS",
           "TOO_MANY_INITS", "UNAUTHORIZED", "ClientMessage", "Close", "ack", "close_notice", "complete", "encode",
           "error", "parse", "pong"]
