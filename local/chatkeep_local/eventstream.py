"""The AWS event-stream binary encoding (`application/vnd.amazon.eventstream`), writing side.

botocore only decodes it (botocore/eventstream.py: EventStreamBuffer), so the local Bedrock stand-in encodes
its frames here. One message:

    prelude   total length (uint32 BE) | headers length (uint32 BE) | CRC32 of those 8 bytes
    headers   per header: name length (uint8) | name | value type (uint8; 7 = string) | length (uint16 BE) | value
    payload   the event's bytes (JSON for Bedrock)
    CRC32     of everything before it (prelude, its CRC included, headers and payload)
"""

from __future__ import annotations

import json
import struct
from binascii import crc32
from collections.abc import Mapping
from typing import Any

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7  # header value type: UTF-8 string with a uint16 length
_PRELUDE = struct.Struct(">II")


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING, len(raw_value)) + raw_value


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers, CRCs included."""
    raw_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = _PRELUDE.size + 4 + len(raw_headers) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(raw_headers))
    prelude += struct.pack(">I", crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", crc32(message) & 0xFFFFFFFF)


def _json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """An event message (`:message-type: event`), e.g. `contentBlockDelta`."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, _json(payload))


def exception(exception_type: str, payload: Mapping[str, Any]) -> bytes:
    """A modeled in-stream exception (`:message-type: exception`), e.g. `modelStreamErrorException`: botocore
    raises it from the stream iterator as EventStreamError with that code."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, _json(payload))


__all__ = ["CONTENT_TYPE", "encode_message", "event", "exception"]
