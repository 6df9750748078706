"""The local API Gateway's HTTP front: framing as API Gateway reads it (400 and close on a body that cannot be
delimited, 413 past the payload limit), keep-alive, TCP_NODELAY and a listen backlog sized for bursts; every
request goes to `runtime.handle` (server.LocalRuntime), except the model stand-in's paths."""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chatkeep_local import apigw

log = logging.getLogger("chatkeep_local")
http_log = logging.getLogger("chatkeep_local.http")


def with_list(resp: tuple[int, Mapping[str, str], bytes]) -> tuple[int, list[tuple[str, str]], bytes]:
    status, headers, body = resp
    return status, list(headers.items()), body


BAD_REQUEST = (400, {"content-type": "application/json"}, b'{"message":"Bad Request"}')
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class BadFraming(Exception):
    """The request's body cannot be delimited (a Content-Length or chunk size that is not a number, a chunk cut
    short): API Gateway answers 400 and closes the connection, and so does the local runtime."""


class HttpFront(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the API's bursts plus the functions' own model streams on the same port
    runtime: Any  # server.LocalRuntime: handle(), model_http


class FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: a streamed answer is many small writes; with Nagle's algorithm each one after the first waits
    # for the client's delayed ACK (~40 ms) on a kept-alive connection. AWS's endpoints flush every event.
    disable_nagle_algorithm = True
    server: HttpFront

    def version_string(self) -> str:
        return "chatkeep-local"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # one line per request is logged by _serve (without query values or headers)

    def _read_body(self) -> bytes | None:
        """The request body; None when it is over API Gateway's payload limit; BadFraming when it cannot be
        delimited."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
        if not lengths:
            return b""
        length_text = lengths.pop()
        if lengths or not _CONTENT_LENGTH.fullmatch(length_text):  # "abc", "-1", "+5", two different lengths
            raise BadFraming
        length = int(length_text)
        if length > apigw.PAYLOAD_LIMIT_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_text = self.rfile.readline(1024).split(b";", 1)[0].strip()  # chunk extensions are ignored
            if not _CHUNK_SIZE.fullmatch(size_text):  # "zz", "-1", an empty line, the connection closed
                raise BadFraming
            size = int(size_text, 16)
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):  # trailer fields, then a blank line
                    pass
                return b"".join(chunks)
            total += size
            if total > apigw.PAYLOAD_LIMIT_BYTES:
                return None
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadFraming
            chunks.append(chunk)

    def _serve(self) -> None:
        started = time.perf_counter()
        runtime = self.server.runtime
        if runtime.model_http is not None and runtime.model_http.owns(self.path):
            status = runtime.model_http.dispatch(self)  # streams its own response (event stream)
            http_log.info("%s %s %s %.1fms model", self.command, self.path.split("?", 1)[0], status,
                          (time.perf_counter() - started) * 1000)
            return
        fn = "-"
        try:
            body = self._read_body()
            if body is None:
                status, headers, data = with_list(apigw.TOO_LARGE)
                self.close_connection = True
            else:
                status, headers, data, fn = runtime.handle(
                    self.command, self.path, list(self.headers.items()), body, self.client_address[0],
                    self.request_version,
                )
        except BadFraming:
            status, headers, data = with_list(BAD_REQUEST)
            self.close_connection = True  # what follows on the connection cannot be told from this body
        except Exception:
            log.error("local runtime error\n%s", traceback.format_exc())
            status, headers, data = with_list(apigw.INTERNAL_ERROR)
        path_only = self.path.split("?", 1)[0]
        try:
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up before the answer (its own timeout): as API Gateway, nothing to tell it, and not
            # the runtime's error (no traceback).
            self.close_connection = True
            http_log.info("%s %s %d: the client closed the connection before the answer", self.command, path_only,
                          status)
            return
        http_log.info(
            "%s %s %d %.1fms %s", self.command, path_only, status, (time.perf_counter() - started) * 1000, fn
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def __getattr__(self, name: str) -> Any:
        # Every method reaches the router, as on API Gateway (TRACE, QUERY, ...: an unknown route is a JSON 404,
        # never http.server's 501 page).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)


__all__ = ["BAD_REQUEST", "BadFraming", "FrontHandler", "HttpFront", "with_list"]
