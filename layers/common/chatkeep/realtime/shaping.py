"""An event, shaped by a subscriber's document: the `next` payload is the result of executing the client's own
subscription operation against the event (graphql-core), so a client gets exactly the fields it asked for.

Size: API Gateway takes at most 128 KB per @connections post (and cuts a message into 32 KB frames itself). A
payload that would not fit is shaped again from the event with its message text cut, and marked: `truncated: true`
in the event and `extensions.truncated: true` in the payload (the client reads the whole text with a query). Only an
agent reply's text or a JSON-escaped 32 KB message can be that large; if even the empty text does not fit (a
document repeating huge fields through aliases), the payload is an error PAYLOAD_TOO_LARGE instead."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from chatkeep.graphql import server
from chatkeep.graphql.errors import format_error
from chatkeep.realtime.events import LiveEvent

MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message payload limit
ENVELOPE_BYTES = 256  # {"id": <at most 128 characters>, "type": "next", "payload": ...}
PAYLOAD_BUDGET = MAX_MESSAGE_BYTES - ENVELOPE_BYTES
CUT_ATTEMPTS = 4


class EventContext:
    """The context of a delivery: the subscription field is the event."""

    def __init__(self, event: LiveEvent) -> None:
        self.event = event
        self._root: dict[str, Any] | None = None

    def subscription_root(self, _kind: str, _entity_id: int) -> dict[str, Any]:
        if self._root is None:
            self._root = self.event.root()
        return self._root


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _execute(event: LiveEvent, document: Any, variables: dict[str, Any] | None, operation: str | None) -> bytes:
    from graphql import execute_sync

    result = execute_sync(server.schema(), document, context_value=EventContext(event), variable_values=variables,
                          operation_name=operation)
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [format_error(e) for e in result.errors]
    if event.truncated:
        payload["extensions"] = {"truncated": True}
    return _dumps(payload)


def _cut(event: LiveEvent, keep: float) -> LiveEvent | None:
    """The event with its message text cut to `keep` of its length (None: nothing left to cut)."""
    message = event.message
    if message is None or not message.content:
        return None
    shorter = dataclasses.replace(message, content=message.content[: int(len(message.content) * keep)])
    return dataclasses.replace(event, message=shorter, truncated=True)


def payload(event: LiveEvent, document: Any, variables: dict[str, Any] | None, operation: str | None) -> bytes:
    """The JSON of a `next` payload for this document, at most PAYLOAD_BUDGET bytes."""
    data = _execute(event, document, variables, operation)
    shaped = event
    for _ in range(CUT_ATTEMPTS):
        if len(data) <= PAYLOAD_BUDGET:
            return data
        cut = _cut(shaped, max(0.0, PAYLOAD_BUDGET / len(data) * 0.9 - 0.01))
        if cut is None:
            break
        shaped = cut
        data = _execute(shaped, document, variables, operation)
    if len(data) <= PAYLOAD_BUDGET:
        return data
    return _dumps({"data": None, "errors": [{
        "message": "this event does not fit a WebSocket message (128 KB) with this selection: query it instead",
        "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]})


def next_message(operation_id: str, shaped: bytes) -> bytes:
    """The `next` message of one subscription, around an already shaped payload (shared by its subscribers)."""
    return b'{"id":' + _dumps(operation_id) + b',"type":"next","payload":' + shaped + b"}"


__all__ = ["MAX_MESSAGE_BYTES", "PAYLOAD_BUDGET", "EventContext", "next_message", "payload"]
