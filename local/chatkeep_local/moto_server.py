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
  waiting to take it back among a few dozen request threads.

`install()` (in the moto process, and under `--inline`) memoises both lookups (moto's modules and patterns do
not change while it runs: the same host always resolves to the same backend), serialises a plain attribute
value (a dict whose keys are `AttributeValue` members: what moto's DynamoDB and Streams results hold) directly,
as the generic serializer would (tests/unit/test_local_moto_server.py compares the two), and buffers each
response so it leaves in one send. The bytes on the wire and every answer stay the same. See
docs/local-runtime.md.
"""

from __future__ import annotations

import functools
from enum import Enum
from typing import Any

_installed = False


def install() -> None:
    """Patch moto's server (idempotent)."""
    global _installed
    if _installed:
        return
    from moto import backends
    from moto.core.serialize import BaseJSONSerializer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    DomainDispatcherApplication.get_backend_for_host = _memoised_by_host(  # type: ignore[method-assign]
        DomainDispatcherApplication.get_backend_for_host)
    # StreamRequestHandler: 0 writes straight to the socket (one send per write); a buffered file sends the
    # headers and the body together when werkzeug flushes at the end of the response.
    MotoRequestHandler.wbufsize = -1
    BaseJSONSerializer._serialize_type_structure = _attribute_values_directly(  # type: ignore[method-assign]
        BaseJSONSerializer._serialize_type_structure)
    _installed = True


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


__all__ = ["ATTRIBUTE_VALUE_MEMBERS", "attribute_value_json", "install", "is_attribute_value_shape"]
