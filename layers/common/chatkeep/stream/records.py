"""Classify one DynamoDB stream record of the chat table into the change the stream function acts on.

Only AttributeValues the work needs are decoded (through chatkeep.repository.codec); images are never
logged. Anything that is not a message INSERT, a session INSERT, a title-changing session MODIFY or a
session REMOVE is ignored (returns None)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chatkeep.repository.codec import attr_value

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
MAX_INDEXED_CONTENT_BYTES = 32 * 1024


class ChangeKind(StrEnum):
    MESSAGE_INSERT = "message_insert"
    SESSION_INSERT = "session_insert"
    SESSION_TITLE = "session_title"  # a MODIFY that changed the title
    SESSION_REMOVE = "session_remove"
    TURN_QUEUED = "turn_queued"  # a MODIFY that queued an agent turn (a user post or a retry)
    REPLY_FINISHED = "reply_finished"  # an agent reply's MODIFY to its final content: index it


@dataclass(slots=True)
class Change:
    kind: ChangeKind
    sequence_number: int
    workspace_id: str
    session_id: int
    container_id: int | None
    # session changes
    old_title: str | None = None
    new_title: str | None = None
    owner: str | None = None
    starter_key: Any = None
    ttl_delete: bool = False
    # message inserts
    content: str | None = None
    created_at: str | None = None
    message_id: int | None = None
    # session inserts and modifies: an agent turn this record queued (the turn worker's job)
    turn_id: int | None = None


def _get(image: dict[str, Any] | None, name: str) -> Any:
    return attr_value(image, name) if image else None


def _split_session_pk(pk: str) -> tuple[str, int] | None:
    # W#{ws}#S#{sid:010d}; a workspace id never contains '#'
    parts = pk.split("#")
    if len(parts) == 4 and parts[0] == "W" and parts[2] == "S" and parts[3].isdigit():
        return parts[1], int(parts[3])
    return None


def item_type(keys: dict[str, Any], image: dict[str, Any] | None) -> str | None:
    declared = _get(image, "type")
    if isinstance(declared, str):
        return declared
    pk, sk = _get(keys, "pk"), _get(keys, "sk")
    if isinstance(pk, str) and isinstance(sk, str) and _split_session_pk(pk):
        if sk == "S":
            return "session"
        if sk.startswith("M#"):
            return "message"
    return None


def is_ttl_delete(record: dict[str, Any]) -> bool:
    identity = record.get("userIdentity") or {}
    return identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL


def truncate_content(content: str | None) -> str:
    """The part of a message that is indexed: at most the first 32 KB (UTF-8), whole characters."""
    if not content:
        return ""
    data = content.encode("utf-8")
    if len(data) <= MAX_INDEXED_CONTENT_BYTES:
        return content
    return data[:MAX_INDEXED_CONTENT_BYTES].decode("utf-8", "ignore")


def _queued_turn(old: dict[str, Any] | None, new: dict[str, Any] | None) -> int | None:
    """The id of an agent turn this change queued (None when it queued none)."""
    if _get(new, "turn_status") != "queued":
        return None
    turn_id = _get(new, "turn_id")
    if not isinstance(turn_id, int):
        raise ValueError("a queued turn without a turn_id")
    if old is not None and _get(old, "turn_id") == turn_id and _get(old, "turn_status") == "queued":
        return None  # the same queued turn, an unrelated change of the session
    return turn_id


def _reply_finished(old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
    return _get(old, "status") == "streaming" and _get(new, "status") in ("complete", "failed", "cancelled")


def classify(record: dict[str, Any]) -> Change | None:
    """A raw Lambda DynamoDB stream record -> Change, or None when it needs no work.

    Raises (ValueError/KeyError/TypeError) on a malformed record of a kind we must act on: the caller
    reports it as failed rather than silently losing a count or a cascade."""
    ddb = record["dynamodb"]
    event = record.get("eventName")
    seq = int(ddb["SequenceNumber"])
    keys = ddb.get("Keys") or {}
    new, old = ddb.get("NewImage"), ddb.get("OldImage")
    kind = item_type(keys, new or old)
    if kind not in ("session", "message"):
        return None

    image = new or old
    ws, sid = _get(image, "ws"), _get(image, "sid")
    if not isinstance(ws, str) or not isinstance(sid, int):
        parsed = _split_session_pk(_get(keys, "pk") or "")
        if parsed is None:
            raise ValueError(f"{kind} record {seq} names no session")
        ws, sid = parsed
    cid = _get(image, "cid")
    cid = cid if isinstance(cid, int) else None

    if kind == "message":
        if event == "MODIFY" and _reply_finished(old, new):
            content = _get(new, "content")
            return Change(kind=ChangeKind.REPLY_FINISHED, sequence_number=seq, workspace_id=ws, session_id=sid,
                          container_id=cid, content=content if isinstance(content, str) else None)
        if event != "INSERT":
            return None  # only agent replies change, and only while streaming; REMOVEs come from our cascades
        content = _get(new, "content")
        return Change(
            kind=ChangeKind.MESSAGE_INSERT,
            sequence_number=seq,
            workspace_id=ws,
            session_id=sid,
            container_id=cid,
            content=content if isinstance(content, str) else None,
            created_at=str(_get(new, "created_at") or ""),
            message_id=_get(new, "mid"),
        )

    if event == "INSERT":
        return Change(
            kind=ChangeKind.SESSION_INSERT,
            sequence_number=seq,
            workspace_id=ws,
            session_id=sid,
            container_id=cid,
            new_title=_get(new, "title"),
            turn_id=_queued_turn(None, new),
        )
    if event == "MODIFY":
        old_title, new_title = _get(old, "title"), _get(new, "title")
        turn_id = _queued_turn(old, new)
        if old_title == new_title:
            if turn_id is not None:
                return Change(kind=ChangeKind.TURN_QUEUED, sequence_number=seq, workspace_id=ws, session_id=sid,
                              container_id=cid, turn_id=turn_id)
            return None  # activity, counts, close, bot config...: no derived data changes
        return Change(
            kind=ChangeKind.SESSION_TITLE,
            sequence_number=seq,
            workspace_id=ws,
            session_id=sid,
            container_id=cid,
            old_title=old_title,
            new_title=new_title,
            turn_id=turn_id,
        )
    if event == "REMOVE":
        if old is None:
            raise ValueError(f"session REMOVE record {seq} has no OldImage (stream view type?)")
        return Change(
            kind=ChangeKind.SESSION_REMOVE,
            sequence_number=seq,
            workspace_id=ws,
            session_id=sid,
            container_id=cid,
            old_title=_get(old, "title"),
            owner=_get(old, "owner"),
            starter_key=_get(old, "starter_key"),
            ttl_delete=is_ttl_delete(record),
        )
    return None
