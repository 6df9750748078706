"""Chat table items <-> domain models: the item of each model, and the model of each item.

The models are read from items as DynamoDB returns them (AttributeValues), attribute by attribute, optional ones
through `.get(name, ABSENT)`: a Python call per attribute cost 40% of a session's decode."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chatkeep.models import Agent, AgentProvider, BotConfig, Container, Message, Role, Session
from chatkeep.repository import keys
from chatkeep.repository.codec import ABSENT, attr_value, to_item
from chatkeep.repository.turn_items import add_reply_fields, queued_turn_values, turn_from_item, usage_from_item


def item_type(item: dict[str, Any]) -> str | None:
    """What an item of the chat table is: session, container, message, ..."""
    return item.get("type", ABSENT).get("S")


# ---------------------------------------------------------------- sessions


def session_from_item(item: dict[str, Any]) -> Session:
    get = item.get
    bot = attr_value(item, "bot_config")
    created_at = item["created_at"]["S"]
    agent_id = get("agent_id", ABSENT).get("N")
    count = get("message_count", ABSENT).get("N")
    purge_at = get("purge_at", ABSENT).get("N")
    return Session(
        id=int(item["sid"]["N"]),
        workspace_id=item["ws"]["S"],
        container_id=int(item["cid"]["N"]),
        owner=item["owner"]["S"],
        created_at=created_at,
        updated_at=get("updated_at", ABSENT).get("S") or created_at,
        last_activity_at=item["last_activity_at"]["S"],
        idle_timeout=int(item["idle_timeout"]["N"]),
        expires_at_epoch=float(item["exp"]["N"]),
        title=get("title", ABSENT).get("S"),
        agent_id=None if agent_id is None else int(agent_id),
        ui_layout=get("ui_layout", ABSENT).get("S") or "DEFAULT",
        metadata=attr_value(item, "metadata") or {},
        initial_context=get("initial_context", ABSENT).get("S"),
        bot_config=BotConfig(bot.get("bot_id"), bot.get("model"), bot.get("temperature")) if bot else None,
        closed_at=get("closed_at", ABSENT).get("S"),
        message_count=int(count or 0),
        last_message_at=get("last_message_at", ABSENT).get("S"),
        starter_key=get("starter_key", ABSENT).get("S"),
        purge_at=int(purge_at or 0),
        agent_managed=bool(get("agent_managed", ABSENT).get("BOOL")),
        turn=turn_from_item(item),
        usage=usage_from_item(item),
    )


def session_to_item(session: Session) -> dict[str, Any]:
    ws, sid = session.workspace_id, session.id
    bot = session.bot_config
    return to_item({
        "pk": keys.session_pk(ws, sid),
        "sk": keys.SESSION_SK,
        "gsi1pk": keys.activity_pk(ws, session.container_id, sid),
        "gsi1sk": keys.activity_sk(session.last_activity_at, sid),
        "type": "session",
        "ws": ws,
        "sid": sid,
        "cid": session.container_id,
        "owner": session.owner,
        "title": session.title,
        "agent_id": session.agent_id,
        "ui_layout": session.ui_layout,
        "metadata": session.metadata,
        "initial_context": session.initial_context,
        "bot_config": {"bot_id": bot.bot_id, "model": bot.model, "temperature": bot.temperature} if bot else None,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "last_activity_at": session.last_activity_at,
        "idle_timeout": session.idle_timeout,
        "exp": int(session.expires_at_epoch),
        "purge_at": session.purge_at,  # set by the service, from its retention setting
        "message_count": 0,
        "starter_key": session.starter_key,
        "agent_managed": True if session.agent_managed else None,
        **(queued_turn_values(session.turn.id, session.turn.message_id) if session.turn else {}),
    })


def session_key(ws: str, sid: int) -> dict[str, Any]:
    return {"pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": keys.SESSION_SK}}


# ---------------------------------------------------------------- containers


def container_from_item(item: dict[str, Any]) -> Container:
    agent_id = item.get("agent_id", ABSENT).get("N")
    return Container(
        id=int(item["cid"]["N"]),
        workspace_id=item["ws"]["S"],
        owner=item["owner"]["S"],
        created_at=item["created_at"]["S"],
        name=item.get("name", ABSENT).get("S"),
        agent_id=None if agent_id is None else int(agent_id),
        metadata=attr_value(item, "metadata") or {},
        session_shards=(frozenset(int(n) for n in item.get("shards", ABSENT).get("NS", ()))
                        if "sharded" in item else None),
    )


SHARDED = "sharded"


def record_shards(update: dict[str, Any], session_ids: Iterable[int]) -> dict[str, Any]:
    """Add to a container item's Update (UpdateItem's or a transaction item's body) the record of its sessions'
    shards, in the same write as the session: `sharded` says the record is kept, `shards` (a number set) holds
    the shards (keys.search_shard) of every session ever created in the container: the spread keys its reads
    must visit."""
    expression = update.get("UpdateExpression", "")
    update["UpdateExpression"] = (expression.replace("SET ", f"SET {SHARDED} = :sharded, ", 1) if "SET " in expression
                                  else f"SET {SHARDED} = :sharded") + " ADD shards :shards"
    update.setdefault("ExpressionAttributeValues", {}).update(
        {":sharded": {"BOOL": True}, ":shards": {"NS": sorted({str(keys.search_shard(s)) for s in session_ids})}})
    return update


def container_to_item(c: Container) -> dict[str, Any]:
    pk = keys.container_pk(c.workspace_id, c.id)
    return to_item({
        "pk": pk, "sk": keys.CONTAINER_SK, "gsi1pk": pk, "gsi1sk": keys.CONTAINER_GSI_SK,
        "type": "container", "ws": c.workspace_id, "cid": c.id, "owner": c.owner, "name": c.name,
        "agent_id": c.agent_id, "metadata": c.metadata, "created_at": c.created_at,
        SHARDED: True,  # its sessions' shards are recorded (`shards`, added by each session's creation)
    })



def container_key(ws: str, cid: int) -> dict[str, Any]:
    return {"pk": {"S": keys.container_pk(ws, cid)}, "sk": {"S": keys.CONTAINER_SK}}


# ---------------------------------------------------------------- messages


def message_from_item(item: dict[str, Any]) -> Message:
    get = item.get
    message = Message(
        id=int(item["mid"]["N"]),
        workspace_id=item["ws"]["S"],
        session_id=int(item["sid"]["N"]),
        container_id=int(item["cid"]["N"]),
        content=item["content"]["S"],
        role=Role(get("role", ABSENT).get("S") or "user"),
        created_at=item["created_at"]["S"],
        sender_sub=get("sender_sub", ABSENT).get("S"),
        sender_name=get("sender_name", ABSENT).get("S"),
        metadata=attr_value(item, "metadata") or {},
    )
    return add_reply_fields(message, item)


def message_items(message: Message, extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new message and its id claim (uniqueness per workspace; `after`/`before` lookups). `extra`: more
    attributes of the message item (an agent reply's)."""
    ws, sid, mid = message.workspace_id, message.session_id, message.id
    msk = keys.message_sk(message.created_at, mid)
    return (
        to_item({"pk": keys.session_pk(ws, sid), "sk": msk, "lsi1sk": keys.message_lsi_sk(mid), "type": "message",
                 "ws": ws, "sid": sid, "cid": message.container_id, "mid": mid, "content": message.content,
                 "role": message.role.value, "sender_sub": message.sender_sub,
                 "sender_name": message.sender_name, "metadata": message.metadata or None,
                 "created_at": message.created_at, **(extra or {})}),
        to_item({"pk": keys.message_claim_pk(ws, mid), "sk": keys.CLAIM_SK, "type": "message_claim",
                 "ws": ws, "sid": sid, "msk": msk}),
    )


# ---------------------------------------------------------------- agents


def agent_from_item(item: dict[str, Any]) -> Agent:
    get = item.get
    return Agent(
        id=int(item["aid"]["N"]),
        workspace_id=item["ws"]["S"],
        slug=item["slug"]["S"],
        name=item["name"]["S"],
        created_at=item["created_at"]["S"],
        model=get("model", ABSENT).get("S"),
        temperature=attr_value(item, "temperature"),
        system_prompt=get("system_prompt", ABSENT).get("S"),
        provider=AgentProvider(get("provider", ABSENT).get("S") or "external"),
        max_output_tokens=_optional_int(get("max_output_tokens", ABSENT).get("N")),
        history_window_tokens=_optional_int(get("history_window_tokens", ABSENT).get("N")),
    )


def _optional_int(raw: str | None) -> int | None:
    return None if raw is None else int(raw)


def agent_key(ws: str, aid: int) -> dict[str, Any]:
    return {"pk": {"S": keys.agent_pk(ws, aid)}, "sk": {"S": keys.AGENT_SK}}


def agent_fields(agent: Agent) -> dict[str, Any]:
    """The attributes every item that carries a copy of the agent holds (the agent, its slug, the default)."""
    return {
        "type": "agent", "ws": agent.workspace_id, "aid": agent.id, "slug": agent.slug, "name": agent.name,
        "model": agent.model, "temperature": agent.temperature, "system_prompt": agent.system_prompt,
        "created_at": agent.created_at, "provider": agent.provider.value,
        "max_output_tokens": agent.max_output_tokens, "history_window_tokens": agent.history_window_tokens,
    }
