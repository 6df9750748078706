"""Messages: send to a channel (creating the session), send to a session, read the history."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatkeep import ids
from chatkeep.rest.errors import declare
from chatkeep.rest.idempotency import created
from chatkeep.rest.params import (
    ChannelIdPath,
    IdempotencyKey,
    PageLimit,
    SessionIdPath,
    decode,
    decode_optional,
    principal,
)
from chatkeep.rest.responses import json_response
from chatkeep.rest.schemas import (
    MESSAGE_ID_PATTERN,
    ChannelMessageOut,
    MessageList,
    MessageOut,
    PostChannelMessageIn,
    PostSessionMessageIn,
)
from chatkeep.rest.shaping import message_json, posted_message_json, session_json
from chatkeep.service import default_service

router = Router()

Order = Annotated[Literal["asc", "desc"], Query(description="asc: oldest first; desc (default): newest first")]
MessageRef = Annotated[str | None, Query(pattern=MESSAGE_ID_PATTERN,
                                         description="A message id (`msg_...`) of this session")]


@router.post("/v1/channels/<channel_id>/messages", tags=["messages"],
             summary="Send a message to a channel; without session_id a new session is created",
             responses=declare(201, ChannelMessageOut, "The session (new or given) and the message", 409, 413, 415))
def post_channel_message(channel_id: ChannelIdPath, body: PostChannelMessageIn,
                         idempotency_key: IdempotencyKey = None):
    p = principal(router)
    cid = decode(ids.Kind.CHANNEL, channel_id)

    def run() -> tuple[int, dict]:
        message, session = default_service().post_to_container(
            p, cid, content=body.content, session_id=decode_optional(ids.Kind.SESSION, body.session_id),
            metadata=body.metadata)
        return 201, {"session": session_json(session), "message": posted_message_json(message, session)}

    return created(p, "POST /v1/channels/{channel_id}/messages", idempotency_key, run, body,
                   channel_id=cid)


@router.post("/v1/sessions/<session_id>/messages", tags=["messages"], summary="Send a message to a session",
             responses=declare(201, MessageOut, "The message (and the agent turn it started, if its agent is a bedrock "
                                                "agent); 409 session_expired / session_closed when the session no "
                                                "longer accepts messages, turn_in_progress while the agent is still "
                                                "answering", 409, 413, 415))
def post_session_message(session_id: SessionIdPath, body: PostSessionMessageIn,
                         idempotency_key: IdempotencyKey = None):
    p = principal(router)
    sid = decode(ids.Kind.SESSION, session_id)

    def run() -> tuple[int, dict]:
        message, session = default_service().post_message(p, sid, content=body.content, role=body.role,
                                                          metadata=body.metadata)
        return 201, posted_message_json(message, session)

    return created(p, "POST /v1/sessions/{session_id}/messages", idempotency_key, run, body,
                   session_id=sid)


@router.get("/v1/sessions/<session_id>/messages", tags=["messages"], summary="Read a session's history",
            responses=declare(200, MessageList, "A page of messages in the order asked for"))
def list_messages(session_id: SessionIdPath, limit: PageLimit = 20, order: Order = "desc", after: MessageRef = None,
                  before: MessageRef = None):
    p = principal(router)
    page = default_service().list_messages(p, decode(ids.Kind.SESSION, session_id), limit=limit, order=order,
                                           after=decode_optional(ids.Kind.MESSAGE, after),
                                           before=decode_optional(ids.Kind.MESSAGE, before))
    data = [message_json(m) for m in page.messages]
    return json_response(200, {"data": data, "has_more": page.has_more,
                               "first_id": data[0]["id"] if data else None,
                               "last_id": data[-1]["id"] if data else None})
