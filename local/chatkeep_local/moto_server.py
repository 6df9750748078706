"""moto's HTTP server doing less work per request (moto 5.2, werkzeug's development server), same answers.

Under `chatkeep dev`'s load the moto process is the busiest interpreter, and most of its time went to serving
HTTP rather than to DynamoDB: every request
- listed moto's package directory and stat-ed each of its ~200 entries to learn that `dynamodb` is a moto
  module (`moto.backends.list_of_moto_modules`), then matched the host against moto's URL patterns, under the
  dispatcher's one lock, so every other request waited behind those system calls;
- serialised every DynamoDB attribute value through moto's generic response serializer, which looks each of
  the ten members of `AttributeValue` up under up to four aliases per value (a stream record of ten
  attributes, a few hundred look-ups: reading 1,000 records took about two seconds);
- wrote its response in two sends (status line and headers, then the body), each one giving up the GIL and
  waiting to take it back among a few dozen request threads;
- listed the response class's methods with `inspect.getmembers` to learn whether the action is one, and parsed
  an UpdateExpression into the same syntax tree each time it was seen (twice per update);
- came on a connection of its own: werkzeug's development server answers every request with
  `Connection: close` (it cannot tell where an unread request body ends), so each request cost botocore a new
  connection and the server a new thread, an accept, a 10 ms wait for the client to hang up, and a close.

`install()` (in the moto process, and under `--inline`) memoises both lookups (moto's modules and patterns do
not change while it runs: the same host always resolves to the same backend; a class's methods are the same
on every request; an update expression's tree depends on its text alone, and moto's validator works on a deep
copy of it), serialises a plain attribute
value (a dict whose keys are `AttributeValue` members: what moto's DynamoDB and Streams results hold) directly,
as the generic serializer would (tests/unit/test_local_moto_server.py compares the two), and buffers each
response so it leaves in one send. Requests whose body length is known (botocore's always are) are served
with HTTP/1.1 keep-alive: the body is read in full before the application runs, so the next request on the
connection starts where it should; anything else (a chunked body, HTTP/1.0) takes werkzeug's path and its
`Connection: close`. The answers stay the same (status, headers but `Connection`, body). See
docs/local-runtime.md.
"""

from __future__ import annotations

import functools
import io
from enum import Enum
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler

_installed = False


def install() -> None:
    """Patch moto's server (idempotent)."""
    global _installed
    if _installed:
        return
    from moto import backends
    from moto.core import responses
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.parsing import expressions
    from moto.moto_server import threaded_moto_server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    DomainDispatcherApplication.get_backend_for_host = _memoised_by_host(  # type: ignore[method-assign]
        DomainDispatcherApplication.get_backend_for_host)
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)
    # the tree is only read (find_clauses) or deep-copied before it is validated and executed; a refused
    # expression raises every time (lru_cache keeps no exceptions)
    parser = expressions.UpdateExpressionParser  # type: ignore[attr-defined]
    parser.make = staticmethod(functools.lru_cache(maxsize=1024)(parser.make))
    # StreamRequestHandler: 0 writes straight to the socket (one send per write); a buffered file sends the
    # headers and the body together when werkzeug flushes at the end of the response.
    MotoRequestHandler.wbufsize = -1
    threaded_moto_server.MotoRequestHandler = KeepAliveRequestHandler  # type: ignore[misc]
    BaseJSONSerializer._serialize_type_structure = _attribute_values_directly(  # type: ignore[method-assign]
        BaseJSONSerializer._serialize_type_structure)
    _installed = True


_NO_BODY = frozenset({204, 304})


class KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler, keeping the connection open after a request whose body length is known."""

    protocol_version = "HTTP/1.1"

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if (self.request_version != "HTTP/1.1" or "Transfer-Encoding" in self.headers
                or "Expect" in self.headers or not length.isdigit()):
            self.close_connection = True
            super().run_wsgi()
            return
        body = self.rfile.read(int(length)) if int(length) else b""
        if len(body) < int(length):  # the client went away mid-body
            self.close_connection = True
            return
        self.environ = environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        status, headers, payload = self._call(environ)
        code = int(status.split(None, 1)[0])
        self.send_response(code, status.split(None, 1)[1] if " " in status else "")
        sent = set()
        for name, value in headers:
            if name.lower() in ("connection", "transfer-encoding"):
                continue
            self.send_header(name, value)
            sent.add(name.lower())
        bodiless = self.command == "HEAD" or code in _NO_BODY or 100 <= code < 200
        if "content-length" not in sent and not bodiless:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not bodiless:
            self.wfile.write(payload)
        self.wfile.flush()

    def _call(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """The application's whole answer (moto's are complete bodies), or werkzeug's 500 if it raised."""
        from werkzeug.exceptions import InternalServerError

        answer: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return chunks.append

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception as exc:
            if self.server.passthrough_errors:
                raise
            self.server.log("error", f"Error on request: {exc!r}")
            chunks.clear()
            chunks.extend(InternalServerError()(environ, start_response))
            self.close_connection = True
        return answer["status"], answer["headers"], b"".join(chunks)


def _memoised_by_host(method: Any) -> Any:
    found: dict[str | None, Any] = {}

    @functools.wraps(method)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        try:
            return found[host]
        except KeyError:
            if len(found) >= 256:  # a few hosts in practice; never an unbounded memory
                found.clear()
            backend = found[host] = method(self, host)
            return backend

    return get_backend_for_host


# DynamoDB's (and DynamoDB Streams') AttributeValue: member -> how moto's JSON serializer writes its value.
ATTRIBUTE_VALUE_MEMBERS = {
    "S": "string", "N": "string", "B": "blob", "SS": "strings", "NS": "strings", "BS": "blobs",
    "M": "map", "L": "list", "NULL": "boolean", "BOOL": "boolean",
}
_SHAPE_TYPES = {"string": ("string", None), "blob": ("blob", None), "strings": ("list", "string"),
                "blobs": ("list", "blob"), "map": ("map", None), "list": ("list", "structure"),
                "boolean": ("boolean", None)}


class _NotPlain(Exception):
    """The value is not a plain attribute value: let moto's serializer write it."""


def is_attribute_value_shape(shape: Any) -> bool:
    """The botocore shape is DynamoDB's AttributeValue, as this module knows it (member names and types)."""
    members = getattr(shape, "members", None)
    if shape.name != "AttributeValue" or members is None or list(members) != list(ATTRIBUTE_VALUE_MEMBERS):
        return False
    for name, member in members.items():
        kind, element = _SHAPE_TYPES[ATTRIBUTE_VALUE_MEMBERS[name]]
        if member.type_name != kind or member.serialization or (
                element is not None and getattr(member, "member", None) is not None
                and member.member.type_name != element):
            return False
    return True


def _string(value: Any) -> Any:  # BaseJSONSerializer._serialize_type_string
    if isinstance(value, Enum):
        value = value.value
    return str(value) if value not in [None, {}, []] else value


def attribute_value_json(serializer: Any, value: Any) -> dict[str, Any]:
    """What BaseJSONSerializer writes for a plain attribute value (raises _NotPlain for anything else)."""
    if type(value) is not dict or not value.keys() <= ATTRIBUTE_VALUE_MEMBERS.keys():
        raise _NotPlain
    out: dict[str, Any] = {}
    for name, kind in ATTRIBUTE_VALUE_MEMBERS.items():  # the shape's member order
        member = value.get(name)
        if member is None:
            continue
        if kind == "string":
            out[name] = _string(member)
        elif kind == "blob":
            out[name] = serializer._base64(member)
        elif kind == "strings":
            out[name] = [_string(v) for v in member]
        elif kind == "blobs":
            out[name] = [serializer._base64(v) for v in member]
        elif kind == "map":
            out[name] = {k: attribute_value_json(serializer, v) for k, v in member.items() if v is not None}
        elif kind == "list":
            out[name] = [v if v is None else attribute_value_json(serializer, v) for v in member]
        else:
            out[name] = member
    return out


def _attribute_values_directly(method: Any) -> Any:
    @functools.wraps(method)
    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        plain = shape.name == "AttributeValue" and shape.__dict__.get("_chatkeep_plain")
        if plain is None:  # once per shape object (moto sets attributes on shapes too: `parent`)
            plain = shape._chatkeep_plain = is_attribute_value_shape(shape)
        if plain and key and not getattr(self._value_picker, "response_transformers", None):
            try:
                written = attribute_value_json(self, value)
            except _NotPlain:
                pass
            else:
                serialized[shape.serialization.get("name", key)] = written
                return
        method(self, serialized, value, shape, key)

    return _serialize_type_structure


__all__ = ["ATTRIBUTE_VALUE_MEMBERS", "KeepAliveRequestHandler", "attribute_value_json", "install",
           "is_attribute_value_shape"]
