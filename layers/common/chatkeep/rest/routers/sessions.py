"""Sessions: create and list in a channel, search, get, patch, close, delete."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatkeep import clock, ids, text
from chatkeep.rest.common import (
    ChannelIdPath,
    IdempotencyKey,
    PageLimit,
    SessionIdPath,
    created,
    decode,
    json_response,
    principal,
    service,
    session_json,
)
from chatkeep.rest.errors import declare
from chatkeep.rest.schemas import (
    CURSOR_PATTERN,
    CreateSessionIn,
    SessionList,
    SessionOut,
    SessionSearchResult,
    UpdateSessionIn,
)
from chatkeep.service import UNSET

router = Router()

Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page")]
Status = Annotated[Literal["active", "expired", "closed"] | None, Query(description="Only sessions in this state")]
SearchQuery = Annotated[str | None, Query(
    max_length=256, description=f"Words to find in titles and messages (prefixes; case- and accent-insensitive; "
                                f"every word must match; at most {text.MAX_QUERY_WORDS} words). Empty: all "
                                f"sessions by recency")]


def to_rest_cursor(repo_cursor: str | None) -> str | None:
    """The repository's cursor (last session's activity key) as `<compact ISO time>.<base32 session id>`:
    a shape the OpenAPI document can state exactly, so any string of that shape is a valid cursor."""
    if repo_cursor is None:
        return None
    from chatkeep.repository.dynamodb import decode_cursor

    activity_sk, sid = decode_cursor(repo_cursor)
    stamp = activity_sk.split("#")[1]
    return f"{re.sub(r'[-:.]', '', stamp)}.{ids.encode(ids.Kind.SESSION, sid)[len('ses_'):]}"


def from_rest_cursor(cursor: str) -> str:
    from chatkeep.repository import keys
    from chatkeep.repository.dynamodb import encode_cursor

    compact, number = cursor.split(".")
    sid = decode(ids.Kind.SESSION, f"ses_{number}")
    stamp = (f"{compact[0:4]}-{compact[4:6]}-{compact[6:8]}T{compact[9:11]}:{compact[11:13]}:{compact[13:15]}"
             f".{compact[15:18]}Z")
    return encode_cursor(keys.activity_sk(stamp, sid), sid)


@router.post("/v1/channels/<channel_id>/sessions", tags=["sessions"], summary="Create a session",
             responses=declare(201, SessionOut, "The new session (agent defaults to the channel's)",
                               409, 413, 415))
def create_session(channel_id: ChannelIdPath, body: CreateSessionIn,
                   idempotency_key: IdempotencyKey = None):
    p = principal(router)
    cid = decode(ids.Kind.CHANNEL, channel_id)

    def run() -> tuple[int, dict]:
        session = service().create_session(
            p, cid, title=body.title, agent_id=decode(ids.Kind.AGENT, body.agent_id),
            metadata=body.metadata, initial_context=body.initial_context, idle_timeout=body.idle_timeout_seconds,
            require_container=True)
        return 201, session_json(session)

    return created(p, "POST /v1/channels/{channel_id}/sessions", idempotency_key, run, body,
                   channel_id=cid)


@router.get("/v1/channels/<channel_id>/sessions", tags=["sessions"],
            summary="List a channel's sessions, most recent activity first",
            responses=declare(200, SessionList, "A page of sessions"))
def list_sessions(channel_id: ChannelIdPath, limit: PageLimit = 20, cursor: Cursor = None,
                  status: Status = None):
    p = principal(router)
    page = service().list_sessions(p, decode(ids.Kind.CHANNEL, channel_id), limit=limit,
                                   cursor=None if cursor is None else from_rest_cursor(cursor), status=status,
                                   require_container=True)
    now = clock.now()
    return json_response(200, {"data": [session_json(s, now) for s in page.sessions], "has_more": page.has_more,
                               "next_cursor": to_rest_cursor(page.next_cursor), "total_count": page.total_count})


@router.get("/v1/channels/<channel_id>/sessions/search", tags=["sessions"], summary="Search a channel's sessions",
            responses=declare(200, SessionSearchResult, "Matching sessions: title matches first, then recency"))
def search_sessions(channel_id: ChannelIdPath, q: SearchQuery = None, limit: PageLimit = 20):
    p = principal(router)
    found = service().search_sessions(p, decode(ids.Kind.CHANNEL, channel_id), q, limit=limit,
                                      require_container=True)
    now = clock.now()
    return json_response(200, {"data": [session_json(s, now) for s in found]})


@router.get("/v1/sessions/<session_id>", tags=["sessions"], summary="Get a session",
            responses=declare(200, SessionOut, "The session, with message_count and last_message_at"))
def get_session(session_id: SessionIdPath):
    p = principal(router)
    session = service().get_session_only(p, decode(ids.Kind.SESSION, session_id))
    return json_response(200, session_json(session))


@router.patch("/v1/sessions/<session_id>", tags=["sessions"], summary="Update a session's title, metadata, agent",
              responses=declare(200, SessionOut, "The updated session", 409, 413, 415))
def update_session(session_id: SessionIdPath, body: UpdateSessionIn):
    p = principal(router)
    sid = decode(ids.Kind.SESSION, session_id)
    given = body.model_fields_set
    svc = service()
    if not given:
        session = svc.get_session_only(p, sid)
    else:
        session = svc.update_session(
            p, sid,
            title=body.title if "title" in given else UNSET,
            metadata=(body.metadata or {}) if "metadata" in given else UNSET,
            agent_id=decode(ids.Kind.AGENT, body.agent_id) if "agent_id" in given else UNSET)
    return json_response(200, session_json(session))


@router.post("/v1/sessions/<session_id>/close", tags=["sessions"], summary="Close a session",
             responses=declare(200, SessionOut, "The session, status closed (closing twice is not an error)",
                               409))
def close_session(session_id: SessionIdPath, idempotency_key: IdempotencyKey = None):
    p = principal(router)
    sid = decode(ids.Kind.SESSION, session_id)

    def run() -> tuple[int, dict]:
        return 200, session_json(service().close_session(p, sid))

    return created(p, "POST /v1/sessions/{session_id}/close", idempotency_key, run, session_id=sid)


@router.delete("/v1/sessions/<session_id>", tags=["sessions"], summary="Delete a session and its messages",
               responses=declare(204, None, "Deleted"))
def delete_session(session_id: SessionIdPath):
    p = principal(router)
    service().delete_session(p, decode(ids.Kind.SESSION, session_id))
    return Response(status_code=204)
