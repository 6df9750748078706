"""What every router shares: the caller, the service, id codecs and the domain -> JSON shaping."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json

from chatkeep import clock, ids, limits
from chatkeep.auth import Principal, principal_from_event
from chatkeep.models import Agent, Container, Message, Session
from chatkeep.rest.schemas import AGENT_ID_PATTERN, CHANNEL_ID_PATTERN, SESSION_ID_PATTERN
from chatkeep.service import default_service

# ---------------------------------------------------------------- parameters

ChannelIdPath = Annotated[str, Path(pattern=CHANNEL_ID_PATTERN, description="A channel id (`ch_...`)",
                                    examples=["ch_c1s"])]
SessionIdPath = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="A session id (`ses_...`)",
                                    examples=["ses_c1s"])]
AgentIdPath = Annotated[str, Path(pattern=AGENT_ID_PATTERN, description="An agent id (`agt_...`)",
                                  examples=["agt_c1s"])]
PageLimit = Annotated[int, Query(ge=1, le=limits.MAX_PAGE, description=f"Page size (1-{limits.MAX_PAGE})")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
           description="Any unique string (e.g. a UUID). A retry with the same key and body within 24 h returns "
                       "the first response and writes nothing new; the same key with another body answers 422 "
                       "idempotency_key_reused."),
]

# ---------------------------------------------------------------- caller and service

service = default_service


def principal(router: Any) -> Principal:
    """The caller: chatkeep.rest.app.handler authenticates before routing and puts it in the routing context."""
    p = router.context.get("principal")
    return p if p is not None else principal_from_event(router.current_event.raw_event)


def decode(kind: ids.Kind, text: str | None) -> int | None:
    """Ids in the path, query and body are checked against their pattern first (malformed -> 400 / 422)."""
    return None if text is None else ids.decode(kind, text)


def enc(kind: ids.Kind, number: int | None) -> str | None:
    return None if number is None else ids.encode(kind, number)


def json_text(body: Any) -> str:
    """Compact JSON, UTF-8 unescaped: pydantic-core's writer (a quarter of json.dumps' CPU on a response body).
    json.dumps stays the fallback for what it refuses (a lone surrogate: never stored, the inputs reject it)."""
    try:
        return to_json(body).decode()
    except PydanticSerializationError:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type="application/json", headers=headers, body=json_text(body))


# ---------------------------------------------------------------- shaping


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
    }


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
    }


def channel_json(container: Container) -> dict[str, Any]:
    """The `ChannelOut` shape (see session_json)."""
    return {
        "id": ids.encode(ids.Kind.CHANNEL, container.id),
        "name": container.name,
        "agent_id": enc(ids.Kind.AGENT, container.agent_id),
        "metadata": container.metadata or {},
        "session_count": container.session_count or 0,
        "created_at": container.created_at,
    }


def agent_json(agent: Agent) -> dict[str, Any]:
    """The `AgentOut` shape (see session_json)."""
    return {
        "id": ids.encode(ids.Kind.AGENT, agent.id),
        "slug": agent.slug,
        "name": agent.name,
        "model": agent.model,
        "temperature": None if agent.temperature is None else float(agent.temperature),
        "system_prompt": agent.system_prompt,
        "created_at": agent.created_at,
    }


def created(p: Principal, route: str, idempotency_key: str | None, run: Any, body: BaseModel | None = None,
            **path_ids: int) -> Response:
    """Answer a POST: `run()` -> (status, body); with an Idempotency-Key, at most once per key and request
    (the request: its path ids and body, built only when there is a key)."""
    if idempotency_key is None:
        status, reply = run()
        return json_response(status, reply)
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    from chatkeep.rest.idempotency import run_once

    payload = path_ids if body is None else {**path_ids, "body": body.model_dump(mode="json")}
    status, reply, replayed = run_once(p, route, idempotency_key, payload, run, BaseRouter.lambda_context)
    return json_response(status, reply, {"Idempotent-Replayed": "true"} if replayed else None)
