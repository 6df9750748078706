"""Domain models -> the JSON of the REST responses (the shapes chatkeep.rest.schemas describes)."""

from __future__ import annotations

from typing import Any

from chatkeep import clock, ids
from chatkeep.models import Agent, Container, Message, Session, Turn, Usage


def _optional_id(kind: ids.Kind, number: int | None) -> str | None:
    return None if number is None else ids.encode(kind, number)


def session_json(session: Session, now: float | None = None) -> dict[str, Any]:
    """The `SessionOut` shape as a plain dict. The domain model already holds checked values, so the response
    models describe the JSON (OpenAPI, tests validate against them) without being built per response: that
    cost about as much as the rest of a GET (bench/README.md, "3. Warm overhead per request")."""
    now = clock.now() if now is None else now
    agent_id = session.agent_id
    return {
        "id": ids.encode(ids.Kind.SESSION, session.id),
        "channel_id": ids.encode(ids.Kind.CHANNEL, session.container_id),
        "agent_id": None if agent_id is None else ids.encode(ids.Kind.AGENT, agent_id),
        "title": session.title,
        "status": session.status(now).value,
        "message_count": session.message_count,
        "metadata": session.metadata or {},
        "initial_context": session.initial_context,
        "created_at": session.created_at,
        "expires_at": clock.iso(session.expires_at_epoch),
        "last_message_at": session.last_message_at,
        "turn": turn_json(session.turn),
        "usage": usage_json(session.usage),
    }


def turn_json(turn: Turn | None) -> dict[str, Any] | None:
    """The `TurnOut` shape."""
    if turn is None:
        return None
    return {"id": ids.encode(ids.Kind.TURN, turn.id), "status": turn.status.value,
            "message_id": ids.encode(ids.Kind.MESSAGE, turn.message_id),
            "reply_id": _optional_id(ids.Kind.MESSAGE, turn.reply_id), "error": turn.error_code,
            "cancel_requested": turn.cancel_requested}


def usage_json(usage: Usage | None) -> dict[str, int] | None:
    return None if usage is None else {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def message_json(message: Message) -> dict[str, Any]:
    """The `MessageOut` shape (see session_json)."""
    return {
        "id": ids.encode(ids.Kind.MESSAGE, message.id),
        "session_id": ids.encode(ids.Kind.SESSION, message.session_id),
        "channel_id": ids.encode(ids.Kind.CHANNEL, message.container_id),
        "role": message.role.value,
        "content": message.content,
        "metadata": message.metadata or {},
        "sender_id": message.sender_sub,
        "sender_name": message.sender_name,
        "created_at": message.created_at,
        "status": message.status.value if message.status else None,
        "model": message.model,
        "stop_reason": message.stop_reason,
        "usage": usage_json(message.usage),
        "error": ({"code": message.error_code, "message": message.error_message or message.error_code}
                  if message.error_code else None),
        "turn": None,  # a 201 names the turn the message started (posted_message_json)
    }


def posted_message_json(message: Message, session: Session) -> dict[str, Any]:
    """A 201's message: with the agent turn it started, if it started one."""
    body = message_json(message)
    turn = session.turn
    body["turn"] = turn_json(turn) if turn is not None and turn.message_id == message.id else None
    return body


def channel_json(container: Container) -> dict[str, Any]:
    """The `ChannelOut` shape (see session_json)."""
    return {
        "id": ids.encode(ids.Kind.CHANNEL, container.id),
        "name": container.name,
        "agent_id": _optional_id(ids.Kind.AGENT, container.agent_id),
        "metadata": container.metadata or {},
        "session_count": container.session_count or 0,
        "created_at": container.created_at,
    }


def agent_json(agent: Agent, *, show_system_prompt: bool) -> dict[str, Any]:
    """The `AgentOut` shape (see session_json). The system prompt is configuration apps keep from their end users:
    only service principals see it (`show_system_prompt`), users get null."""
    return {
        "id": ids.encode(ids.Kind.AGENT, agent.id),
        "slug": agent.slug,
        "name": agent.name,
        "model": agent.model,
        "temperature": None if agent.temperature is None else float(agent.temperature),
        "system_prompt": agent.system_prompt if show_system_prompt else None,
        "created_at": agent.created_at,
        "provider": agent.provider.value,
        "max_output_tokens": agent.max_output_tokens,
        "history_window_tokens": agent.history_window_tokens,
    }
