"""The `@connections` management API of a WebSocket API, served over HTTP so that boto3's own
`apigatewaymanagementapi` client works unchanged against it:

    boto3.client("apigatewaymanagementapi", endpoint_url="http://127.0.0.1:PORT/<stage>")

    POST   /<stage>/@connections/{connectionId}   PostToConnection: the body is the message (at most 128 KB)
    GET    /<stage>/@connections/{connectionId}   GetConnection: connectedAt, identity, lastActiveAt
    DELETE /<stage>/@connections/{connectionId}   DeleteConnection: 204, the socket closes

Shapes and errors follow botocore's service model (apigatewaymanagementapi 2018-11-29, rest-json): an error is its
HTTP status, an `x-amzn-ErrorType: <ShapeName>` header (where botocore reads the error code from) and a JSON body.
Signatures are not checked. This module only speaks HTTP; the connections themselves live in a backend
(`websocket_api.WebSocketApi`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote

from chatkeep_local.addresses import http_url
from chatkeep_local.websocket_events import api_gateway_id

log = logging.getLogger("chatkeep_local.websocket")

_MAX_READ_BYTES = 16 * 1024 * 1024  # beyond this the request is not even read


class GoneError(LookupError):
    """The connection does not exist (any more): GoneException, 410."""


class PayloadTooLargeError(ValueError):
    """The data is over the message payload limit: PayloadTooLargeException, 413."""


@dataclass(frozen=True)
class ConnectionDetails:
    connected_at: float  # epoch seconds
    last_active_at: float
    source_ip: str
    user_agent: str


class ConnectionsBackend(Protocol):
    """What the management API acts on. Each method raises GoneError for an unknown or closed connection."""

    def post_to_connection(self, connection_id: str, data: bytes) -> None: ...

    def delete_connection(self, connection_id: str) -> None: ...

    def get_connection(self, connection_id: str) -> ConnectionDetails: ...


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Reply = tuple[int, dict[str, str], bytes]


def _error(status: int, error_type: str, message: str | None = None) -> Reply:
    body = {"message": message} if message is not None else {}
    return status, {"x-amzn-ErrorType": error_type, "content-type": "application/json"}, json.dumps(body).encode()


def handle_request(backend: ConnectionsBackend, stage: str, method: str, path: str, body: bytes) -> Reply:
    """One management API request -> (status, headers, body)."""
    match = re.fullmatch(rf"/{re.escape(stage)}/@connections/([^/]+)", unquote(path.split("?", 1)[0]))
    if match is None:
        return _error(403, "ForbiddenException", "Forbidden")
    connection_id = match.group(1)
    try:
        if method == "POST":
            backend.post_to_connection(connection_id, body)
            return 200, {}, b""
        if method == "DELETE":
            backend.delete_connection(connection_id)
            return 204, {}, b""
        if method == "GET":
            details = backend.get_connection(connection_id)
            payload = {
                "connectedAt": _iso(details.connected_at),
                "identity": {"sourceIp": details.source_ip, "userAgent": details.user_agent},
                "lastActiveAt": _iso(details.last_active_at),
            }
            return 200, {"content-type": "application/json"}, json.dumps(payload).encode()
    except GoneError:
        return _error(410, "GoneException")
    except PayloadTooLargeError as exc:
        return _error(413, "PayloadTooLargeException", str(exc))
    return _error(403, "ForbiddenException", "Forbidden")


class ConnectionsApiServer:
    """`handle_request` on its own HTTP port (a daemon thread). `endpoint_url` is what the functions give boto3."""

    def __init__(self, backend: ConnectionsBackend, *, host: str = "127.0.0.1", port: int = 0, stage: str = "local"):
        self.backend = backend
        self.stage = stage
        self._httpd = _Server((host, port), _Handler)
        self._httpd.handle = self._handle
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return http_url(self._httpd.server_address, f"/{self.stage}")

    def _handle(self, method: str, path: str, body: bytes) -> Reply:
        return handle_request(self.backend, self.stage, method, path, body)

    def start(self) -> ConnectionsApiServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="chatkeep-connections-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    handle: Callable[[str, str, bytes], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def version_string(self) -> str:
        return "chatkeep-local"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # one line per request below

    def _serve(self) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_READ_BYTES:
            status, headers, data = _error(413, "PayloadTooLargeException", "Request too large")
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            try:
                status, headers, data = self.server.handle(self.command, self.path, body)
            except Exception:
                log.error("@connections: %s %s failed\n%s", self.command, self.path, traceback.format_exc())
                status, headers, data = _error(500, "InternalServerError", "Internal server error")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("x-amzn-RequestId", api_gateway_id())
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
        log.info("@connections %s %s %d %.1fms", self.command, unquote(self.path), status,
                 (time.perf_counter() - started) * 1000)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve


__all__ = [
    "ConnectionDetails",
    "ConnectionsApiServer",
    "ConnectionsBackend",
    "GoneError",
    "PayloadTooLargeError",
    "handle_request",
]
