"""Page cursors of a container's session list (GSI1, newest activity first).

A cursor names where the next page starts: the last session of a page, by its GSI1 position (activity key,
session id), held as an opaque token (`encode_cursor` / `decode_cursor`). Callers of the repository see it in
one shape, `<compact ISO time>.<base32 session id>` (`to_rest_cursor` / `from_rest_cursor`), which the REST
API's OpenAPI document states exactly, so any string of that shape is a valid cursor."""

from __future__ import annotations

import base64
import binascii
import re
from typing import overload

from chatkeep import ids
from chatkeep.errors import BadInput
from chatkeep.models import Session
from chatkeep.repository import keys

_NOT_OURS = "cursor: not a cursor this API returned (pass next_cursor of the previous page)"


def encode_cursor(gsi1sk: str, sid: int) -> str:
    return base64.urlsafe_b64encode(f"{gsi1sk}|{sid}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        gsi1sk, sid = raw.rsplit("|", 1)
        if not gsi1sk.startswith("A#") or not sid.isdigit():
            raise ValueError(raw)
        return gsi1sk, int(sid)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise BadInput(_NOT_OURS) from exc


@overload
def to_rest_cursor(repo_cursor: str) -> str: ...
@overload
def to_rest_cursor(repo_cursor: None) -> None: ...
def to_rest_cursor(repo_cursor: str | None) -> str | None:
    """The position as `<compact ISO time>.<base32 session id>`."""
    if repo_cursor is None:
        return None
    activity_sk, sid = decode_cursor(repo_cursor)
    stamp = activity_sk.split("#")[1]
    return f"{re.sub(r'[-:.]', '', stamp)}.{ids.encode(ids.Kind.SESSION, sid)[len('ses_'):]}"


def from_rest_cursor(cursor: str) -> str:
    try:
        compact, number = cursor.split(".")
    except ValueError:
        raise BadInput(_NOT_OURS) from None
    try:
        sid = ids.decode(ids.Kind.SESSION, f"ses_{number}")
    except BadInput:  # a cursor is not an id: its error says so, not "malformed session id"
        raise BadInput(_NOT_OURS) from None
    stamp = (f"{compact[0:4]}-{compact[4:6]}-{compact[6:8]}T{compact[9:11]}:{compact[11:13]}:{compact[13:15]}"
             f".{compact[15:18]}Z")
    return encode_cursor(keys.activity_sk(stamp, sid), sid)


def cursor_after(session: Session) -> str:
    """The cursor of the page that starts after `session`."""
    return to_rest_cursor(encode_cursor(keys.activity_sk(session.last_activity_at, session.id), session.id))


def start_of(cursor: str) -> tuple[str, int]:
    """(GSI1 sort key, session id) of the last session of the page before `cursor`; BadInput when it is not a
    cursor this API returned."""
    return decode_cursor(from_rest_cursor(cursor))
