"""Live events: what subscribers of a topic receive, as the root value their subscription document is executed
against (the GraphQL shapes of chatkeep.graphql.resolvers), and the events a stored change makes.

Topics: a session's key (`W#{ws}#S#{sid}`: onTodoChatMessage) and a todo's key (`W#{ws}#C#{cid}`:
onTodoChatSessions). The workspace is part of the topic, so an event never reaches another workspace; `owner` (the
session's owner, when the event knows it) is checked against every subscriber again at delivery.

From the chat table's stream (`of_record`; the stream processor publishes the events of the records it processed):

    message INSERT                  session: MESSAGE_CREATED, or REPLY_<status> for a reply written finished;
                                    none for a reply that starts streaming (the turn worker pushes its chunks)
    message MODIFY streaming->end   session: REPLY_COMPLETED / REPLY_FAILED / REPLY_CANCELLED
    session INSERT                  todo: SESSION_CREATED
    session MODIFY                  closed: both SESSION_CLOSED; title: session SESSION_RENAMED + todo SESSION_UPDATED;
                                    layout, metadata, bot, agent, message count: todo SESSION_UPDATED; else none
    session REMOVE (API or TTL)     both SESSION_DELETED; the session's subscriptions complete after it
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from chatkeep.models import Message, ReplyStatus, Session
from chatkeep.repository import keys
from chatkeep.repository.codec import attr_value
from chatkeep.repository.items import message_from_item, session_from_item

SESSION, TODO = "session", "todo"
REPLY_KINDS = {ReplyStatus.COMPLETE: "REPLY_COMPLETED", ReplyStatus.FAILED: "REPLY_FAILED",
               ReplyStatus.CANCELLED: "REPLY_CANCELLED"}
# Session attributes a todo's session list shows (a change of any of them is SESSION_UPDATED).
LISTED = ("title", "ui_layout", "metadata", "bot_config", "agent_id", "message_count", "last_message_at")


def topic(kind: str, workspace_id: str, entity_id: int) -> str:
    """The topic of a subscription field: a session's key or a todo's key."""
    return keys.session_pk(workspace_id, entity_id) if kind == SESSION else keys.container_pk(workspace_id, entity_id)


@dataclass(slots=True)
class LiveEvent:
    """One event of a topic: `on` names the subscription field (SESSION: onTodoChatMessage, TODO:
    onTodoChatSessions), `kind` its kind, with the message or session it carries."""

    topic: str
    on: str
    kind: str
    message: Message | None = None
    session: Session | None = None
    delta: str | None = None
    offset: int | None = None
    truncated: bool = False  # message.content was cut to fit a WebSocket message (chatkeep.realtime.shaping)
    owner: str | None = None  # the session's owner, when known: a user subscriber must be it
    completes: bool = False  # the topic ends with this event (its subscriptions complete)

    @property
    def key(self) -> str:
        """What the event is about, for logs and tests ("MESSAGE_CREATED 12", "SESSION_RENAMED 7")."""
        subject = self.message.id if self.message else self.session.id if self.session else "?"
        return f"{self.kind} {subject}"

    def root(self) -> dict[str, Any]:
        """The subscription field's value (snake_case: the schema converts names). Built when a subscriber's
        document is executed only: the GraphQL shapes (and ariadne) are not imported for a topic nobody follows."""
        from chatkeep.graphql.resolvers import message_dict, session_dict

        session = session_dict(self.session) if self.session else None
        if self.on == TODO:
            assert self.session is not None
            return {"kind": self.kind, "todo_id": self.session.container_id, "session": session,
                    "truncated": self.truncated}
        sid = self.message.session_id if self.message else self.session.id if self.session else 0
        return {"kind": self.kind, "session_id": sid, "message": message_dict(self.message) if self.message else None,
                "delta": self.delta, "offset": self.offset, "session": session, "truncated": self.truncated}


def message_event(kind: str, message: Message, *, delta: str | None = None, offset: int | None = None) -> LiveEvent:
    return LiveEvent(topic=topic(SESSION, message.workspace_id, message.session_id), on=SESSION, kind=kind,
                     message=message, delta=delta, offset=offset)


def reply_chunk(reply: Message, text: str, delta: str, offset: int) -> LiveEvent:
    """An agent reply grew: `text` is all of it so far, `delta` what is new (from `offset`)."""
    return message_event("REPLY_CHUNK", dataclasses.replace(reply, content=text), delta=delta, offset=offset)


def session_event(kind: str, session: Session, *, on: str) -> LiveEvent:
    """A session event on the session's own topic (`on` SESSION) or its todo's (TODO)."""
    where = topic(on, session.workspace_id, session.id if on == SESSION else session.container_id)
    return LiveEvent(topic=where, on=on, kind=kind, session=session, owner=session.owner,
                     completes=on == SESSION and kind == "SESSION_DELETED")


def of_record(record: dict[str, Any]) -> list[LiveEvent]:
    """The events of one chat table stream record (as Lambda delivers it); [] for everything else."""
    ddb = record.get("dynamodb") or {}
    new, old = ddb.get("NewImage"), ddb.get("OldImage")
    image = new or old
    if not image:
        return []
    kind = attr_value(image, "type")
    name = record.get("eventName")
    if kind == "message" and new:
        return _message_events(name, new, old)
    if kind == "session":
        return _session_events(name, new, old)
    return []


def _message_events(name: str | None, new: dict[str, Any], old: dict[str, Any] | None) -> list[LiveEvent]:
    status = attr_value(new, "status")
    if name == "INSERT":
        if status == ReplyStatus.STREAMING.value:
            return []  # the turn worker pushes the reply as it grows
        return [message_event(REPLY_KINDS.get(ReplyStatus(status), "") if status else "MESSAGE_CREATED",
                              message_from_item(new))]
    if name == "MODIFY" and attr_value(old or {}, "status") == ReplyStatus.STREAMING.value and status in (
            "complete", "failed", "cancelled"):
        return [message_event(REPLY_KINDS[ReplyStatus(status)], message_from_item(new))]
    return []


def _session_events(name: str | None, new: dict[str, Any] | None, old: dict[str, Any] | None) -> list[LiveEvent]:
    if name == "INSERT" and new:
        return [session_event("SESSION_CREATED", session_from_item(new), on=TODO)]
    if name == "REMOVE" and old:
        gone = session_from_item(old)
        return [session_event("SESSION_DELETED", gone, on=SESSION), session_event("SESSION_DELETED", gone, on=TODO)]
    if name != "MODIFY" or not new or not old:
        return []
    session = session_from_item(new)
    if attr_value(new, "closed_at") and not attr_value(old, "closed_at"):
        return [session_event("SESSION_CLOSED", session, on=SESSION), session_event("SESSION_CLOSED", session, on=TODO)]
    events = []
    if attr_value(new, "title") != attr_value(old, "title"):
        events.append(session_event("SESSION_RENAMED", session, on=SESSION))
    if any(attr_value(new, field) != attr_value(old, field) for field in LISTED):
        events.append(session_event("SESSION_UPDATED", session, on=TODO))
    return events


__all__ = ["SESSION", "TODO", "LiveEvent", "message_event", "of_record", "reply_chunk", "session_event", "topic"]
