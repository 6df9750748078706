"""Thin resolvers: arguments -> ChatService -> dicts shaped like the schema (snake_case: the schema is
built with convert_names_case, so `createdAt` resolves `created_at`)."""

from __future__ import annotations

from typing import Any

from ariadne import EnumType, MutationType, ObjectType, QueryType, ScalarType, SubscriptionType
from graphql import GraphQLFloat

from chatkeep import clock, ids, limits
from chatkeep.errors import BadInput
from chatkeep.models import Message, ReplyStatus, Session, SessionView, Turn, TurnStatus, Usage
from chatkeep.service import UNSET

query = QueryType()
mutation = MutationType()
subscription = SubscriptionType()
session_type = ObjectType("TodoChatSession")
json_scalar = ScalarType("JSON")
float_scalar = ScalarType("Float")  # the built-in Float, printed as JavaScript servers print it (below)
status_enum = EnumType("TodoChatSessionStatus", {"ACTIVE": "active", "EXPIRED": "expired", "CLOSED": "closed"})
turn_status_enum = EnumType("TodoChatTurnStatus", {s.name: s.value for s in TurnStatus})
reply_status_enum = EnumType("TodoChatReplyStatus", {s.name: s.value for s in ReplyStatus})


def _optional_id(value: float | None, what: str) -> int | None:
    return None if value is None else ids.check_number(value, what)


def session_dict(session: Session, messages: list[Message] | None = None) -> dict[str, Any]:
    bot = session.bot_config
    return {
        "id": session.id,
        "title": session.title,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "default_bot_id": session.agent_id,
        "todo_id": session.container_id,
        "ui_layout": session.ui_layout,
        "status": session.status(clock.now()).value,
        "message_count": session.message_count,
        "expires_at": clock.iso(session.expires_at_epoch),
        "last_message_at": session.last_message_at,
        "metadata": session.metadata,
        "bot_config": {"bot_id": bot.bot_id, "model": bot.model, "temperature": bot.temperature} if bot else None,
        "turn": turn_dict(session.turn),
        "usage": usage_dict(session.usage),
        # Preloaded (details query) or None: the messages resolver fetches only when asked for.
        "_messages": messages,
    }


def message_dict(message: Message) -> dict[str, Any]:
    bot = message.is_bot_reply
    return {
        "id": message.id,
        "message": message.content,
        "created_at": message.created_at,
        "is_bot_reply": bot,
        "sent_by": None if bot else {"id": message.sender_sub or "", "first_name": message.sender_name},
        "session_id": message.session_id,
        "status": message.status.value if message.status else None,
        "model": message.model,
        "stop_reason": message.stop_reason,
        "usage": usage_dict(message.usage),
        "error": ({"code": message.error_code, "message": message.error_message or message.error_code}
                  if message.error_code else None),
        "turn": None,
    }


def turn_dict(turn: Turn | None) -> dict[str, Any] | None:
    if turn is None:
        return None
    return {"id": turn.id, "status": turn.status.value, "message_id": turn.message_id, "reply_id": turn.reply_id,
            "error": turn.error_code, "cancel_requested": turn.cancel_requested}


def usage_dict(usage: Usage | None) -> dict[str, int] | None:
    return None if usage is None else {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


@session_type.field("messages")
def resolve_messages(obj: dict[str, Any], info: Any, limit: int | None = limits.MAX_MESSAGES_PAGE,
                     before: float | None = None) -> list:
    if limit is None:  # `messages(limit: null)` is valid GraphQL: the default
        limit = limits.MAX_MESSAGES_PAGE
    preloaded = obj.get("_messages")
    if preloaded is not None and before is None and len(preloaded) <= limit:
        return [message_dict(m) for m in preloaded[-limit:]] if limit else []
    if obj.get("_deleted"):
        return []
    ctx = info.context
    view = ctx.service.get_session(ctx.principal, obj["id"], message_limit=limit,
                                   before_message_id=_optional_id(before, "before"))
    return [message_dict(m) for m in view.messages]


@json_scalar.serializer
def serialize_json(value: Any) -> Any:
    return value


@json_scalar.value_parser
def parse_json(value: Any) -> Any:
    return value


# graphql-core's own Float result coercion, taken before float_scalar's serializer replaces it (ariadne binds a
# serializer by setting it on the schema's Float type, which is graphql-core's shared GraphQLFloat).
_graphql_float = GraphQLFloat.serialize
_JS_EXPONENT_FROM = 1e21  # JSON.stringify writes whole numbers as integers below this, with an exponent above


@float_scalar.serializer
def serialize_float(value: Any) -> int | float:
    """Float's result coercion unchanged (what it accepts, what it refuses), then a whole number goes out as a
    JSON integer, `1553259272` and not `1553259272.0`, as a JavaScript GraphQL server prints it: clients that
    compare ids or put them in URLs see the same text from both. The schema still says Float; inputs are
    untouched."""
    number = _graphql_float(value)
    return int(number) if number.is_integer() and abs(number) < _JS_EXPONENT_FROM else number


# ---------------------------------------------------------------- queries

@query.field("getTodoChatSessions")
def get_todo_chat_sessions(_: Any, info: Any, todo_id: float, limit: int | None = 20,
                           offset: int | None = 0) -> dict[str, Any]:
    ctx = info.context
    page = ctx.service.list_sessions(ctx.principal, ids.check_number(todo_id, "todoId"), limit=limit, offset=offset)
    return {"sessions": [session_dict(s) for s in page.sessions], "total_count": page.total_count}


@query.field("getOneTodoChatSession")
def get_one_todo_chat_session(_: Any, info: Any, session_id: float) -> dict[str, Any]:
    ctx = info.context
    view: SessionView = ctx.service.get_session(ctx.principal, ids.check_number(session_id, "sessionId"))
    return session_dict(view.session, view.messages)


@query.field("getOrCreateUserStartTodoChatSession")
def get_or_create_start_session(_: Any, info: Any, bot_slug: str | None = None) -> dict[str, Any]:
    ctx = info.context
    # No preloaded messages: an existing starter may have some, read (one Query) only when the query asks for them.
    return session_dict(ctx.service.starter_session(ctx.principal, bot_slug or None))


@query.field("getSearchTodoChatSessions")
def get_search_todo_chat_sessions(_: Any, info: Any, todo_id: float, search_query: str | None = None) -> list:
    ctx = info.context
    found = ctx.service.search_sessions(ctx.principal, ids.check_number(todo_id, "todoId"), search_query)
    return [session_dict(s) for s in found]


# ---------------------------------------------------------------- mutations

@mutation.field("createTodoChatSession")
def create_todo_chat_session(_: Any, info: Any, data: dict[str, Any]) -> dict[str, Any]:
    ctx = info.context
    if data.get("todo_id") is None:
        raise BadInput("data.todoId is required to create a session")
    session = ctx.service.create_session(
        ctx.principal, ids.check_number(data["todo_id"], "todoId"), title=data.get("title"),
        agent_id=_optional_id(data.get("default_bot_id"), "defaultBotId"),
        ui_layout=data.get("ui_layout") or "DEFAULT", metadata=data.get("metadata"),
        idle_timeout=data.get("idle_timeout_seconds"))
    return session_dict(session, [])


@mutation.field("updateTodoChatSession")
def update_todo_chat_session(_: Any, info: Any, data: dict[str, Any], id: float) -> dict[str, Any]:
    ctx = info.context
    if "idle_timeout_seconds" in data:
        raise BadInput("idleTimeoutSeconds can only be set when the session is created")
    session = ctx.service.update_session(
        ctx.principal, ids.check_number(id, "id"),
        title=data.get("title", UNSET),
        agent_id=_optional_id(data["default_bot_id"], "defaultBotId") if "default_bot_id" in data else UNSET,
        ui_layout=data.get("ui_layout", UNSET),
        metadata=data.get("metadata", UNSET),
        container_id=_optional_id(data.get("todo_id"), "todoId"))
    return session_dict(session)


@mutation.field("updateTodoChatSessionCustomBotConfig")
def update_bot_config(_: Any, info: Any, data: dict[str, Any]) -> dict[str, Any]:
    ctx = info.context
    session = ctx.service.update_bot_config(
        ctx.principal, ids.check_number(data["session_id"], "sessionId"),
        bot_id=ids.check_number(data["bot_id"], "botId"), model=data.get("model"),
        temperature=data.get("temperature"))
    return session_dict(session)


@mutation.field("deleteTodoChatSession")
def delete_todo_chat_session(_: Any, info: Any, id: float) -> dict[str, Any]:
    ctx = info.context
    result = session_dict(ctx.service.delete_session(ctx.principal, ids.check_number(id, "id")), [])
    result["_deleted"] = True
    return result


@mutation.field("deleteManyTodoChatSession")
def delete_many_todo_chat_session(_: Any, info: Any, ids: list[int]) -> int:
    ctx = info.context
    return ctx.service.delete_sessions(ctx.principal, ids)


@mutation.field("createTodoChatMessage")
def create_todo_chat_message(_: Any, info: Any, data: dict[str, Any]) -> dict[str, Any]:
    ctx = info.context
    message, session = ctx.service.post_message(
        ctx.principal, ids.check_number(data["session_id"], "sessionId"), content=data["message"],
        role="assistant" if data.get("is_bot_reply") else "user")
    out = message_dict(message)
    if session.turn is not None and session.turn.message_id == message.id:
        out["turn"] = turn_dict(session.turn)
    return out


@mutation.field("closeTodoChatSession")
def close_todo_chat_session(_: Any, info: Any, id: float) -> dict[str, Any]:
    ctx = info.context
    return session_dict(ctx.service.close_session(ctx.principal, ids.check_number(id, "id")))


@mutation.field("cancelTodoChatTurn")
def cancel_todo_chat_turn(_: Any, info: Any, session_id: float) -> dict[str, Any]:
    ctx = info.context
    return session_dict(ctx.service.cancel_turn(ctx.principal, ids.check_number(session_id, "sessionId")))


@mutation.field("retryTodoChatTurn")
def retry_todo_chat_turn(_: Any, info: Any, session_id: float) -> dict[str, Any]:
    ctx = info.context
    return session_dict(ctx.service.retry_turn(ctx.principal, ids.check_number(session_id, "sessionId")))


# ---------------------------------------------------------------- subscriptions (chatkeep.realtime)
# The context decides what a subscription field is: when a client subscribes, the topic it follows (authorized:
# NotFound for what the caller cannot read); when an event is delivered, that event (shaped by the same document).

@subscription.field("onTodoChatMessage")
def on_todo_chat_message(_: Any, info: Any, session_id: float) -> dict[str, Any] | None:
    return info.context.subscription_root("session", ids.check_number(session_id, "sessionId"))


@subscription.field("onTodoChatSessions")
def on_todo_chat_sessions(_: Any, info: Any, todo_id: float) -> dict[str, Any] | None:
    return info.context.subscription_root("todo", ids.check_number(todo_id, "todoId"))


bindables = [query, mutation, subscription, session_type, json_scalar, float_scalar, status_enum, turn_status_enum,
             reply_status_enum]
