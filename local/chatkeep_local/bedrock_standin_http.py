"""The Bedrock stand-in over HTTP: Bedrock Runtime's wire protocol for ConverseStream, plus its control API.

    POST {prefix}/model/{modelId}/converse-stream    modelId URL-encoded (an id, an ARN, an inference profile);
                                                     200 `application/vnd.amazon.eventstream` (chunked), or
                                                     Bedrock's JSON error with `x-amzn-ErrorType`
    GET    /_local/model/requests[?clear=1]          JSON list of the recorded requests (see bedrock_standin)
    DELETE /_local/model/requests                    {"cleared": n}
    GET    /_local/model/faults                      JSON list of the pending faults
    POST   /_local/model/faults                      one fault object or a list: queued; -> the pending list
    DELETE /_local/model/faults                      {"cleared": n}; releases stalled streams
    GET    /_local/model/config                      the StandInConfig as JSON
    POST   /_local/model/config                      change some of it, e.g. {"chunk_delay_s": 0}

`StandInServer` serves all of it on its own loopback port (prefix ""); `chatkeep dev` serves it on its main port
with the Bedrock paths under BEDROCK_PREFIX (botocore keeps an `endpoint_url` path: the worker's client uses
`endpoint_url=http://127.0.0.1:3000/_local/bedrock`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from chatkeep_local import eventstream
from chatkeep_local.addresses import http_url
from chatkeep_local.bedrock_standin import ErrorReply, Fault, StandInModel

log = logging.getLogger("chatkeep_local.model")

BEDROCK_PREFIX = "/_local/bedrock"  # where `chatkeep dev` serves the Bedrock Runtime paths
CONTROL_PREFIX = "/_local/model/"
ENDPOINT_ENV = "BEDROCK_ENDPOINT_URL"  # what the local runtime sets for the functions
_CONVERSE_STREAM = re.compile(r"^/model/(?P<model>[^/]+)/converse-stream$")
_OPERATION = re.compile(r"^/model/[^/]+/[a-z-]+$")
_ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_BODY_LIMIT = 25 * 1024 * 1024


class StandInHttp:
    """Routes one HTTP request to the stand-in, if it is one of its paths."""

    def __init__(self, model: StandInModel, bedrock_prefix: str = "", upstream: Any = None):
        """`upstream`: a chatkeep_local.bedrock_proxy.BedrockProxy (`chatkeep dev --bedrock`): ConverseStream
        requests go to real Bedrock instead of the stand-in (recorded all the same)."""
        self.model = model
        self.bedrock_prefix = bedrock_prefix.rstrip("/")
        self.upstream = upstream

    def owns(self, path: str) -> bool:
        path = path.split("?", 1)[0]
        return path.startswith(CONTROL_PREFIX) or (
            path.startswith(self.bedrock_prefix + "/model/") if self.bedrock_prefix else path.startswith("/model/"))

    def dispatch(self, handler: BaseHTTPRequestHandler) -> int | None:
        """Answer the request on `handler` if the path is ours: -> the status sent (0 when the client went
        away first), or None (not ours)."""
        if not self.owns(handler.path):
            return None
        try:
            return self._dispatch(handler)
        except OSError:  # the client hung up
            handler.close_connection = True
            return 0

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> int:
        path, _, query = handler.path.partition("?")
        body = _read_body(handler)
        if body is None:
            return _send(handler, 413, {"message": "Request body too large"})
        if path.startswith(CONTROL_PREFIX):
            status, payload = control(self.model, handler.command, path, query, body)
            return _send(handler, status, payload)
        operation = path[len(self.bedrock_prefix):]
        match = _CONVERSE_STREAM.match(operation)
        if match is None or handler.command != "POST":
            what = "ConverseStream only" if _OPERATION.match(operation) else "no such operation"
            return _send_error(handler, 404, "UnknownOperationException",
                               f"The local Bedrock stand-in serves {what}: POST /model/{{modelId}}/converse-stream")
        if self.upstream is not None:
            self.model.record_forwarded(unquote(match["model"]), body)
            return int(self.upstream.forward(handler, unquote(match["model"]), body))
        return self._converse_stream(handler, unquote(match["model"]), body)

    def _converse_stream(self, handler: BaseHTTPRequestHandler, model_id: str, body: bytes) -> int:
        started = time.monotonic()
        request_id, reply = self.model.converse_stream(model_id, body)
        if isinstance(reply, ErrorReply):
            return _send_error(handler, reply.status, reply.error_type, reply.message, request_id)
        self.model.wait(reply.hold_s)
        handler.send_response(200)
        handler.send_header("Content-Type", eventstream.CONTENT_TYPE)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("x-amzn-RequestId", request_id)
        handler.end_headers()
        try:
            for frame in reply.frames(started, self.model.wait, lambda: self.model.delta_sent(request_id)):
                if frame is None:  # a "drop" fault: cut the connection mid-stream, no terminating chunk
                    handler.close_connection = True
                    with contextlib.suppress(OSError):
                        handler.connection.shutdown(socket.SHUT_RDWR)
                    return 200
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
            self.model.finish(request_id, "client_disconnected")
        return 200


def control(model: StandInModel, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
    """The /_local/model/* control API: -> (status, JSON payload)."""
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        return 400, {"message": "body must be JSON"}
    resource = path[len(CONTROL_PREFIX):].strip("/")
    try:
        if resource == "requests" and method == "GET":
            clear = parse_qs(query).get("clear", ["0"])[-1] not in ("0", "", "false")
            return 200, model.requests(clear=clear)
        if resource == "requests" and method == "DELETE":
            return 200, {"cleared": model.clear_requests()}
        if resource == "faults" and method == "GET":
            return 200, model.faults()
        if resource == "faults" and method == "POST":
            items = data if isinstance(data, list) else [data]
            faults = [Fault.from_dict(item) for item in items]  # every one valid, or none queued
            for fault in faults:
                model.add_fault(fault)
            return 200, {"added": [f.to_dict() for f in faults], "pending": model.faults()}
        if resource == "faults" and method == "DELETE":
            return 200, {"cleared": model.clear_faults()}
        if resource == "config" and method == "GET":
            return 200, model.config.to_dict()
        if resource == "config" and method == "POST":
            if not isinstance(data, dict):
                return 400, {"message": "body must be a JSON object of config fields"}
            model.config.update(data)
            return 200, model.config.to_dict()
    except ValueError as exc:
        return 400, {"message": str(exc)}
    return 404, {"message": "Not Found"}


def _read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    length = int(handler.headers.get("Content-Length") or 0)
    if length > _BODY_LIMIT:
        handler.close_connection = True
        return None
    return handler.rfile.read(length) if length else b""


def _send(handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None) -> int:
    data = json.dumps(payload, default=str).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)
    return status


def _send_error(handler: BaseHTTPRequestHandler, status: int, error_type: str, message: str,
                request_id: str = "") -> int:
    """Bedrock's error response: botocore reads the code from x-amzn-ErrorType and the text from `message`."""
    headers = {"x-amzn-ErrorType": error_type + _ERROR_NAMESPACE}
    if request_id:
        headers["x-amzn-RequestId"] = request_id
    return _send(handler, status, {"message": message}, headers)


# ------------------------------------------------------------------------------------ standalone server
class StandInServer(ThreadingHTTPServer):
    """The stand-in on its own port, served from a daemon thread as soon as it is built."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # bursts of concurrent turns queue instead of being refused

    def __init__(self, model: StandInModel, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self.model = model
        self.routes = StandInHttp(model)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="bedrock-standin", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return http_url(self.server_address)

    @property
    def endpoint_url(self) -> str:
        """What boto3's `bedrock-runtime` client takes as `endpoint_url`."""
        return self.url

    def close(self) -> None:
        self.model.close()  # stalled streams end now, not after their stall
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StandInServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: a streamed answer is many small writes; with Nagle's algorithm each one after the first waits
    # for the client's delayed ACK (~40 ms) on a kept-alive connection. AWS's endpoints flush every event.
    disable_nagle_algorithm = True
    server: StandInServer

    def version_string(self) -> str:
        return "chatkeep-bedrock-standin"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)

    def _serve(self) -> None:
        if self.server.routes.dispatch(self) is None:
            _send(self, 404, {"message": "Not Found"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve


__all__ = ["BEDROCK_PREFIX", "CONTROL_PREFIX", "ENDPOINT_ENV", "StandInHttp", "StandInServer", "control"]
