"""What API Gateway's WebSocket API sends to a Lambda proxy integration, and the shapes around it.

The three events follow what AWS delivers (Powertools' parser models `APIGatewayWebSocket*EventModel` and its test
events, recorded from real APIs): `$connect` carries the handshake's headers and query string, `$default` (and
custom routes) the message body, `$disconnect` the close code and reason. `requestContext.identity` holds only
`sourceIp`, as in recorded events. Ids are shaped like API Gateway's (16 characters of URL-safe base64, ending `=`).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from chatkeep_local.apigw import _clf_time, trace_id


@dataclass(frozen=True)
class WebSocketLimits:
    """API Gateway's WebSocket quotas ("Quotas for configuring and running a WebSocket API"); none can be raised.
    Tests shrink the timeouts."""

    frame_bytes: int = 32 * 1024  # a bigger incoming frame closes the connection with 1009
    message_bytes: int = 128 * 1024  # incoming messages and @connections posts
    idle_timeout_s: float = 10 * 60  # no data message either way
    max_duration_s: float = 2 * 60 * 60
    integration_timeout_s: float = 29.0


# disconnectReason for the close codes API Gateway reports. 1000 ("delete_connection") and 1005 (a client close
# without a status) are recorded from AWS; the others are our wording.
DISCONNECT_REASONS = {
    1000: "Connection Closed Normally",
    1001: "Going away",
    1005: "Client-side close frame status not set",
    1006: "Connection closed abnormally",
    1009: "Message too big",
}

# API Gateway strips the hop-by-hop upgrade headers from the $connect event.
_DROPPED_CONNECT_HEADERS = {"connection", "upgrade"}


def api_gateway_id() -> str:
    """A connection, request or message id shaped like API Gateway's (e.g. `BFaT_fALIAMCKug=`)."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


@dataclass(frozen=True)
class ConnectionContext:
    """What every event of one connection repeats."""

    connection_id: str
    connected_at: float  # epoch seconds
    source_ip: str
    domain_name: str
    stage: str
    api_id: str


def _request_context(
    conn: ConnectionContext, route_key: str, event_type: str, request_id: str, now: float
) -> dict[str, Any]:
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": _clf_time(now),
        "messageDirection": "IN",
        "stage": conn.stage,
        "connectedAt": int(conn.connected_at * 1000),
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": conn.source_ip},
        "requestId": request_id,
        "domainName": conn.domain_name,
        "connectionId": conn.connection_id,
        "apiId": conn.api_id,
    }


def connect_event(
    conn: ConnectionContext, *, request_id: str, now: float, headers: Sequence[tuple[str, str]], query: str
) -> dict[str, Any]:
    """The `$connect` event: the upgrade request's headers (names as the client sent them; `headers` keeps the last
    value of a repeated header, `multiValueHeaders` all) plus the X-Forwarded-* and trace headers API Gateway adds;
    the query string, when there is one."""
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        if name.lower() not in _DROPPED_CONNECT_HEADERS:
            multi.setdefault(name, []).append(value)
    present = {name.lower() for name in multi}
    host = next((v[-1] for k, v in multi.items() if k.lower() == "host"), conn.domain_name)
    added = {
        "X-Amzn-Trace-Id": trace_id(now),
        "X-Forwarded-For": conn.source_ip,
        "X-Forwarded-Port": host.rsplit(":", 1)[1] if ":" in host else "80",
        "X-Forwarded-Proto": "http",
    }
    for name, value in added.items():
        if name.lower() not in present:
            multi[name] = [value]
    event: dict[str, Any] = {
        "headers": {name: values[-1] for name, values in multi.items()},
        "multiValueHeaders": multi,
    }
    if query:
        multi_qs: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            multi_qs.setdefault(key, []).append(value)
        event["queryStringParameters"] = {key: values[-1] for key, values in multi_qs.items()}
        event["multiValueQueryStringParameters"] = multi_qs
    event["requestContext"] = _request_context(conn, "$connect", "CONNECT", request_id, now)
    event["isBase64Encoded"] = False
    return event


def message_event(
    conn: ConnectionContext, *, route_key: str, request_id: str, now: float, message: str | bytes
) -> dict[str, Any]:
    """A `MESSAGE` event: a text frame's body as is, a binary frame's base64-encoded (`isBase64Encoded: true`)."""
    context = _request_context(conn, route_key, "MESSAGE", request_id, now)
    context["messageId"] = api_gateway_id()
    if isinstance(message, str):
        return {"requestContext": context, "body": message, "isBase64Encoded": False}
    return {"requestContext": context, "body": base64.b64encode(message).decode(), "isBase64Encoded": True}


def disconnect_event(
    conn: ConnectionContext, *, request_id: str, now: float, status_code: int, reason: str
) -> dict[str, Any]:
    """The `$disconnect` event. Its headers are the odd fixed set AWS sends (Host plus three empty ones)."""
    context = _request_context(conn, "$disconnect", "DISCONNECT", request_id, now)
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    headers = {"Host": conn.domain_name, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    return {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }


class IntegrationError(Exception):
    """The integration returned something API Gateway cannot read as a proxy response."""


def connect_outcome(result: Any) -> tuple[int, str | None, bytes]:
    """(status, subprotocol to echo, body) from a $connect integration's return. No return value, or no statusCode,
    accepts the connection; only a `Sec-WebSocket-Protocol` header in the return is passed on to the client."""
    if result is None:
        return 200, None, b""
    if not isinstance(result, dict):
        raise IntegrationError(f"$connect returned {type(result).__name__}, not a proxy response")
    try:
        status = int(result.get("statusCode", 200))
    except (TypeError, ValueError) as exc:
        raise IntegrationError(f"statusCode {result.get('statusCode')!r}") from exc
    headers = {str(k).lower(): v for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if values:
            headers.setdefault(str(name).lower(), values[-1])
    subprotocol = headers.get("sec-websocket-protocol")
    return status, str(subprotocol) if subprotocol else None, response_body(result)


def response_body(result: Any) -> bytes:
    body = result.get("body") if isinstance(result, dict) else None
    if body is None:
        return b""
    if result.get("isBase64Encoded"):
        return base64.b64decode(body)
    return str(body).encode()


def gateway_error(message: str, connection_id: str, request_id: str) -> str:
    """The message API Gateway itself sends to the client when a route fails (`Internal server error`) or no route
    matches (`Forbidden`), byte for byte as AWS formats it."""
    return f'{{"message": {json.dumps(message)}, "connectionId":"{connection_id}", "requestId":"{request_id}"}}'


def select_route(expression: str, message: str | bytes, route_keys: Iterable[str]) -> str:
    """The route key of an incoming message: the value the route selection expression (`$request.body.a.b`) finds
    in a JSON body when a route of that key exists, else `$default`."""
    keys = set(route_keys) - {"$connect", "$disconnect", "$default"}
    if not keys or not expression.startswith("$request.body.") or not isinstance(message, str):
        return "$default"
    try:
        value: Any = json.loads(message)
    except ValueError:
        return "$default"
    for part in expression.removeprefix("$request.body.").split("."):
        if not isinstance(value, dict):
            return "$default"
        value = value.get(part)
    return value if isinstance(value, str) and value in keys else "$default"


def utf8_fragments(text: str, frame_bytes: int) -> list[str]:
    """`text` cut into pieces of at most `frame_bytes` UTF-8 bytes, never inside a character: API Gateway delivers a
    message bigger than its 32 KB frame limit as a fragmented message."""
    data = text.encode()
    if len(data) <= frame_bytes:
        return [text]
    pieces = []
    start = 0
    while start < len(data):
        end = min(start + frame_bytes, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte: back off to its lead byte
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    return pieces


__all__ = [
    "DISCONNECT_REASONS",
    "ConnectionContext",
    "IntegrationError",
    "WebSocketLimits",
    "api_gateway_id",
    "connect_event",
    "connect_outcome",
    "disconnect_event",
    "gateway_error",
    "message_event",
    "response_body",
    "select_route",
    "utf8_fragments",
]
