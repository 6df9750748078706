"""Sessions: create and list in a channel, search, get, patch, close, delete."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatkeep import clock, ids, text
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
    CURSOR_PATTERN,
    CreateSessionIn,
    SessionList,
    SessionOut,
    SessionSearchResult,
    UpdateSessionIn,
)
from chatkeep.rest.shaping import session_json
from chatkeep.service import UNSET, default_service

router = Router()

Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page")]
Status = Annotated[Literal["active", "expired", "closed"] | None, Query(description="Only sessions in this state")]
SearchQuery = Annotated[str | None, Query(
    max_length=256, description=f"Words to find in titles and messages (prefixes; case- and accent-insensitive; "
                                f"every word must match; at most {text.MAX_QUERY_WORDS} words). Empty: all "
                                f"sessions by recency")]


@router.post("/v1/channels/<channel_id>/sessions", tags=["sessions"], summary="Create a session",
             responses=declare(201, SessionOut, "The new session (agent defaults to the channel's)",
                               409, 413, 415))
def create_session(channel_id: ChannelIdPath, body: CreateSessionIn,
                   idempotency_key: IdempotencyKey = None):
    p = principal(router)
    cid = decode(ids.Kind.CHANNEL, channel_id)

    def run() -> tuple[int, dict]:
        session = default_service().create_channel_session(
            p, cid, title=body.title, agent_id=decode_optional(ids.Kind.AGENT, body.agent_id),
            metadata=body.metadata, initial_context=body.initial_context, idle_timeout=body.idle_timeout_seconds)
        return 201, session_json(session)

    return created(p, "POST /v1/channels/{channel_id}/sessions", idempotency_key, run, body,
                   channel_id=cid)


@router.get("/v1/channels/<channel_id>/sessions", tags=["sessions"],
            summary="List a channel's sessions, most recent activity first",
            responses=declare(200, SessionList, "A page of sessions"))
def list_sessions(channel_id: ChannelIdPath, limit: PageLimit = 20, cursor: Cursor = None,
                  status: Status = None):
    p = principal(router)
    page = default_service().list_channel_sessions(p, decode(ids.Kind.CHANNEL, channel_id), limit=limit,
                                                   cursor=cursor, status=status)
    now = clock.now()
    return json_response(200, {"data": [session_json(s, now) for s in page.sessions], "has_more": page.has_more,
                               "next_cursor": page.next_cursor, "total_count": page.total_count})


@router.get("/v1/channels/<channel_id>/sessions/search", tags=["sessions"], summary="Search a channel's sessions",
            responses=declare(200, SessionSearchResult, "Matching sessions: title matches first, then recency"))
def search_sessions(channel_id: ChannelIdPath, q: SearchQuery = None, limit: PageLimit = 20):
    p = principal(router)
    found = default_service().search_channel_sessions(p, decode(ids.Kind.CHANNEL, channel_id), q, limit=limit)
    now = clock.now()
    return json_response(200, {"data": [session_json(s, now) for s in found]})


@router.get("/v1/sessions/<session_id>", tags=["sessions"], summary="Get a session",
            responses=declare(200, SessionOut, "The session, with message_count and last_message_at"))
def get_session(session_id: SessionIdPath):
    p = principal(router)
    session = default_service().get_session_only(p, decode(ids.Kind.SESSION, session_id))
    return json_response(200, session_json(session))


@router.patch("/v1/sessions/<session_id>", tags=["sessions"], summary="Update a session's title, metadata, agent",
              responses=declare(200, SessionOut, "The updated session", 409, 413, 415))
def update_session(session_id: SessionIdPath, body: UpdateSessionIn):
    p = principal(router)
    sid = decode(ids.Kind.SESSION, session_id)
    given = body.model_fields_set
    svc = default_service()
    if not given:
        session = svc.get_session_only(p, sid)
    else:
        session = svc.update_session(
            p, sid,
            title=body.title if "title" in given else UNSET,
            metadata=(body.metadata or {}) if "metadata" in given else UNSET,
            agent_id=decode_optional(ids.Kind.AGENT, body.agent_id) if "agent_id" in given else UNSET)
    return json_response(200, session_json(session))


@router.post("/v1/sessions/<session_id>/close", tags=["sessions"], summary="Close a session",
             responses=declare(200, SessionOut, "The session, status closed (closing twice is not an error)",
                               409))
def close_session(session_id: SessionIdPath, idempotency_key: IdempotencyKey = None):
    p = principal(router)
    sid = decode(ids.Kind.SESSION, session_id)

    def run() -> tuple[int, dict]:
        return 200, session_json(default_service().close_session(p, sid))

    return created(p, "POST /v1/sessions/{session_id}/close", idempotency_key, run, session_id=sid)


@router.delete("/v1/sessions/<session_id>", tags=["sessions"], summary="Delete a session and its messages",
               responses=declare(204, None, "Deleted"))
def delete_session(session_id: SessionIdPath):
    p = principal(router)
    default_service().delete_session(p, decode(ids.Kind.SESSION, session_id))
    return Response(status_code=204)
