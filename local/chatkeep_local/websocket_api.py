"""Local emulation of an API Gateway WebSocket API: the socket clients connect to, the `$connect` / `$disconnect` /
`$default` (and custom) routes invoked into Lambda handlers with the events AWS sends, and the `@connections`
management API the handlers push with (`connections_api`). See docs/live-updates-local.md.

    api = WebSocketApi({"$connect": on_connect, "$default": on_message, "$disconnect": on_disconnect},
                       stage="prod").start()
    api.url                  # ws://127.0.0.1:PORT/prod          (what clients connect to)
    api.management_endpoint  # http://127.0.0.1:PORT2/prod       (boto3 apigatewaymanagementapi endpoint_url)
    api.stop()

A route target is a `handler(event, context)` or anything with `invoke(event, request_id)` (the local runtime's
`FunctionInvoker`). The server is `websockets` on its own asyncio loop in a daemon thread; handlers run in a
thread pool, one invocation per message and concurrently, as Lambda is invoked by API Gateway (no ordering between
the messages of a connection). The public methods are thread-safe; call them from any thread but the loop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from chatkeep_local import websocket_events as events
from chatkeep_local.connections_api import ConnectionDetails, ConnectionsApiServer, GoneError, PayloadTooLargeError
from chatkeep_local.lambda_runtime import LambdaContext
from chatkeep_local.template import FunctionSpec
from chatkeep_local.websocket_events import WebSocketLimits

log = logging.getLogger("chatkeep_local.websocket")

Handler = Callable[[dict[str, Any], Any], Any]


class Invoker(Protocol):
    spec: FunctionSpec

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any: ...


class HandlerInvoker:
    """A plain `handler(event, context)` behind the `invoke` of lambda_runtime.FunctionInvoker."""

    def __init__(self, handler: Handler, name: str | None = None, timeout: int = 29):
        self.handler = handler
        name = name or str(getattr(handler, "__name__", "handler"))
        self.spec = FunctionSpec(
            logical_id=name, code_uri=Path("."), handler=f"{name}.handler", runtime="python3.13", timeout=timeout,
            memory_size=128, environment={},
        )

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        return self.handler(event, LambdaContext(self.spec, request_id))


def as_invoker(target: Invoker | Handler) -> Invoker:
    return target if hasattr(target, "invoke") else HandlerInvoker(target)  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class PushRecord:
    """One post_to_connection, as the management API answered it (200, 410 or 413)."""

    connection_id: str
    data: bytes
    status: int
    at: float


@dataclasses.dataclass
class _Connection:
    context: events.ConnectionContext
    last_active_at: float
    user_agent: str
    subprotocol: str | None = None
    ws: ServerConnection | None = None
    closing: tuple[int, str] | None = None  # (code, reason) when the API closes it: delete, timeouts, shutdown

    @property
    def connection_id(self) -> str:
        return self.context.connection_id


def _http_response(status: int, body: bytes, content_type: str = "application/json") -> Response:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return Response(status, phrase, headers, body)


class WebSocketApi:
    """One WebSocket API stage: `start()`, then clients connect to `url`; `stop()` closes everything."""

    def __init__(
        self,
        routes: Mapping[str, Invoker | Handler],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        management_port: int = 0,
        stage: str = "local",
        api_id: str = "localwsapi",
        route_selection_expression: str = "$request.body.action",
        route_responses: Iterable[str] = (),
        limits: WebSocketLimits | None = None,
        clock: Callable[[], float] = time.time,
        sweep_interval_s: float = 1.0,
        max_workers: int = 16,
    ):
        self.routes = {key: as_invoker(target) for key, target in routes.items()}
        self.host, self.port, self.management_port = host, port, management_port
        self.stage = stage
        self.api_id = api_id
        self.route_selection_expression = route_selection_expression
        self.route_responses = set(route_responses)
        self.limits = limits or WebSocketLimits()
        self.clock = clock
        self.sweep_interval_s = sweep_interval_s
        self.pushes: list[PushRecord] = []
        self._pushes_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="chatkeep-ws-lambda")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._management: ConnectionsApiServer | None = None
        self._accepted: dict[Any, _Connection] = {}  # handshake id -> connection, between $connect and the 101
        self._open: dict[str, _Connection] = {}  # connection id -> open connection (what @connections can reach)
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/{self.stage}"

    @property
    def management_endpoint(self) -> str:
        assert self._management is not None, "start() first"
        return self._management.endpoint_url

    def start(self) -> WebSocketApi:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(self._listen())
            except BaseException as exc:
                failure.append(exc)
                loop.close()
                ready.set()
                return
            self._spawn(self._sweep_forever())
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="chatkeep-websocket", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        self._management = ConnectionsApiServer(self, host=self.host, port=self.management_port, stage=self.stage)
        self._management.start()
        return self

    async def _listen(self) -> Server:
        server = await serve(
            self._serve_connection,
            self.host,
            self.port,
            process_request=self._process_request,
            process_response=self._process_response,
            compression=None,  # API Gateway does not negotiate permessage-deflate
            ping_interval=None,  # nor send pings of its own
            open_timeout=self.limits.integration_timeout_s + 5,  # the handshake waits for $connect
            max_size=(self.limits.message_bytes, self.limits.frame_bytes),
            server_header=None,
        )
        self.port = server.sockets[0].getsockname()[1]
        return server

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection (1001, `$disconnect` invoked), then the servers."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(timeout), loop).result(timeout + 1)
            except Exception:  # best effort at exit
                log.warning("websocket: shutdown did not finish cleanly\n%s", traceback.format_exc())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        if self._management is not None:
            self._management.stop()
            self._management = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _shutdown(self, timeout: float) -> None:
        for conn in list(self._open.values()):
            self._close(conn, 1001)
        assert self._server is not None
        self._server.close(close_connections=False)
        async with asyncio.timeout(timeout):
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run `coro` on the loop from another thread and return its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the WebSocket API is not started")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("blocking call from the WebSocket API's own loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ------------------------------------------------------------------------------------------- handshake
    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path.rstrip("/") != f"/{self.stage}":
            return _http_response(403, b'{"message":"Forbidden"}')
        now = self.clock()
        host = request.headers.get("Host", "")
        conn = _Connection(
            context=events.ConnectionContext(
                connection_id=events.api_gateway_id(),
                connected_at=now,
                source_ip=str(ws.remote_address[0]),
                domain_name=(host or self.host).rsplit(":", 1)[0],
                stage=self.stage,
                api_id=self.api_id,
            ),
            last_active_at=now,
            user_agent=request.headers.get("User-Agent", ""),
        )
        invoker = self.routes.get("$connect")
        if invoker is not None:
            request_id = events.api_gateway_id()
            event = events.connect_event(
                conn.context, request_id=request_id, now=now, headers=list(request.headers.raw_items()), query=query
            )
            try:
                result = await self._invoke("$connect", invoker, event, request_id, conn.connection_id)
                status, conn.subprotocol, body = events.connect_outcome(result)
            except Exception as exc:
                if isinstance(exc, events.IntegrationError):
                    log.error("%s: invalid $connect response: %s", invoker.spec.logical_id, exc)
                return _http_response(500, b'{"message": "Internal server error"}')
            if not 200 <= status < 300:
                log.info("WS $connect %s rejected with %d", conn.connection_id, status)
                return _http_response(status, body, "text/plain; charset=utf-8")
        self._accepted[ws.id] = conn
        return None

    def _process_response(self, ws: ServerConnection, request: Request, response: Response) -> None:
        conn = self._accepted.get(ws.id)
        if response.status_code != 101:
            self._accepted.pop(ws.id, None)  # the handshake failed after $connect accepted it
        elif conn is not None and conn.subprotocol:
            # API Gateway echoes the subprotocol only when the $connect integration returned the header.
            response.headers["Sec-WebSocket-Protocol"] = conn.subprotocol

    # ------------------------------------------------------------------------------------------ connection
    async def _serve_connection(self, ws: ServerConnection) -> None:
        conn = self._accepted.pop(ws.id)
        conn.ws = ws
        self._open[conn.connection_id] = conn
        code, reason = 1006, events.DISCONNECT_REASONS[1006]
        try:
            while True:
                message = await ws.recv()
                conn.last_active_at = self.clock()
                self._spawn(self._on_message(conn, message))
        except ConnectionClosed as closed:
            code, reason = self._disconnect_status(conn, closed)
        finally:
            self._open.pop(conn.connection_id, None)
        invoker = self.routes.get("$disconnect")
        if invoker is None:
            return
        request_id = events.api_gateway_id()
        event = events.disconnect_event(
            conn.context, request_id=request_id, now=self.clock(), status_code=code, reason=reason
        )
        with contextlib.suppress(Exception):  # logged by _invoke; $disconnect is best effort, as in AWS
            await self._invoke("$disconnect", invoker, event, request_id, conn.connection_id)

    @staticmethod
    def _disconnect_status(conn: _Connection, closed: ConnectionClosed) -> tuple[int, str]:
        if conn.closing is not None:
            return conn.closing
        frame = closed.rcvd if closed.rcvd is not None else closed.sent
        if frame is None:
            return 1006, events.DISCONNECT_REASONS[1006]
        return frame.code, frame.reason or events.DISCONNECT_REASONS.get(frame.code, "")

    async def _on_message(self, conn: _Connection, message: str | bytes) -> None:
        route_key = events.select_route(self.route_selection_expression, message, self.routes)
        request_id = events.api_gateway_id()
        invoker = self.routes.get(route_key)
        if invoker is None:
            await self._send(conn, events.gateway_error("Forbidden", conn.connection_id, request_id))
            return
        event = events.message_event(
            conn.context, route_key=route_key, request_id=request_id, now=self.clock(), message=message
        )
        try:
            result = await self._invoke(route_key, invoker, event, request_id, conn.connection_id)
        except Exception:
            await self._send(conn, events.gateway_error("Internal server error", conn.connection_id, request_id))
            return
        if route_key in self.route_responses and isinstance(result, dict) and result.get("body") is not None:
            body = events.response_body(result)
            await self._send(conn, body.decode() if not result.get("isBase64Encoded") else body)

    async def _invoke(self, route_key: str, invoker: Invoker, event: dict[str, Any], request_id: str,
                      connection_id: str) -> Any:
        name = invoker.spec.logical_id
        started = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, invoker.invoke, event, request_id
            )
        except Exception:
            log.error("%s: unhandled error for WebSocket route %s\n%s", name, route_key, traceback.format_exc())
            raise
        finally:
            elapsed = time.perf_counter() - started
            log.info("WS %s %s %.1fms %s", route_key, connection_id, elapsed * 1000, name)
            if elapsed > self.limits.integration_timeout_s:
                log.warning("%s took %.1fs: API Gateway would have timed the integration out after %.0fs",
                            route_key, elapsed, self.limits.integration_timeout_s)

    async def _send(self, conn: _Connection, message: str | bytes) -> bool:
        """Deliver one message, in frames of at most the frame limit; False if the connection is gone."""
        if conn.ws is None or self._open.get(conn.connection_id) is not conn:
            return False
        frames = self.limits.frame_bytes
        if isinstance(message, str):
            fragments: list[str] | list[bytes] = events.utf8_fragments(message, frames)
        else:
            fragments = [message[i:i + frames] for i in range(0, len(message), frames)] or [b""]
        try:
            await conn.ws.send(fragments[0] if len(fragments) == 1 else fragments)
        except ConnectionClosed:
            return False
        conn.last_active_at = self.clock()
        return True

    def _close(self, conn: _Connection, code: int, reason: str | None = None) -> None:
        """Close from the API's side: unreachable at once for @connections, the close handshake in the background."""
        reason = events.DISCONNECT_REASONS[code] if reason is None else reason
        conn.closing = (code, reason)
        self._open.pop(conn.connection_id, None)
        if conn.ws is not None:
            self._spawn(conn.ws.close(code, reason))

    # ------------------------------------------------------------------------------------------- timeouts
    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            self._close_expired()

    def _close_expired(self) -> list[str]:
        now = self.clock()
        expired = [
            conn for conn in self._open.values()
            if now - conn.last_active_at >= self.limits.idle_timeout_s
            or now - conn.context.connected_at >= self.limits.max_duration_s
        ]
        for conn in expired:
            self._close(conn, 1001)
        return [conn.connection_id for conn in expired]

    def sweep_expired(self) -> list[str]:
        """Close now the connections past the idle timeout or the maximum duration (by `clock`); their ids.
        A background sweep does the same every `sweep_interval_s`."""

        async def sweep() -> list[str]:
            return self._close_expired()

        return self._call(sweep())

    # ------------------------------------------------------------------------------ the @connections backend
    def post_to_connection(self, connection_id: str, data: bytes) -> None:
        """Send `data` as one message (text when it is UTF-8, else binary). GoneError, PayloadTooLargeError."""
        if len(data) > self.limits.message_bytes:
            self._record(connection_id, data, 413)
            raise PayloadTooLargeError(f"Message of {len(data)} bytes exceeds {self.limits.message_bytes}")

        async def deliver() -> bool:
            conn = self._open.get(connection_id)
            if conn is None:
                self._record(connection_id, data, 410)
                return False
            try:
                message: str | bytes = data.decode("utf-8")
            except UnicodeDecodeError:
                message = data
            # Recorded before the frames leave, so a test that has received the message finds its record.
            index = self._record(connection_id, data, 200)
            if await self._send(conn, message):
                return True
            with self._pushes_lock:
                self.pushes[index] = dataclasses.replace(self.pushes[index], status=410)
            return False

        if not self._call(deliver()):
            raise GoneError(connection_id)

    def delete_connection(self, connection_id: str) -> None:
        """Close the connection (1000); `$disconnect` follows. GoneError if it is not open."""

        async def delete() -> bool:
            conn = self._open.get(connection_id)
            if conn is None:
                return False
            self._close(conn, 1000)
            return True

        if not self._call(delete()):
            raise GoneError(connection_id)

    def get_connection(self, connection_id: str) -> ConnectionDetails:
        async def details() -> ConnectionDetails | None:
            conn = self._open.get(connection_id)
            if conn is None:
                return None
            return ConnectionDetails(
                conn.context.connected_at, conn.last_active_at, conn.context.source_ip, conn.user_agent
            )

        found = self._call(details())
        if found is None:
            raise GoneError(connection_id)
        return found

    def connection_ids(self) -> list[str]:
        """The open connections, oldest first."""

        async def ids() -> list[str]:
            return list(self._open)

        return self._call(ids())

    def _record(self, connection_id: str, data: bytes, status: int) -> int:
        with self._pushes_lock:
            self.pushes.append(PushRecord(connection_id, bytes(data), status, self.clock()))
            return len(self.pushes) - 1


__all__ = ["Handler", "HandlerInvoker", "Invoker", "PushRecord", "WebSocketApi", "as_invoker"]
