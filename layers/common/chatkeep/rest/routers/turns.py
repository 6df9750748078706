"""Agent turns: cancel the turn in progress, retry after a failure or a cancel, a workspace's token usage
(docs/agents.md)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BeforeValidator

from chatkeep import ids
from chatkeep.rest.errors import declare
from chatkeep.rest.idempotency import created
from chatkeep.rest.params import IdempotencyKey, SessionIdPath, decode, principal
from chatkeep.rest.responses import json_response
from chatkeep.rest.schemas import SessionOut, UsageList
from chatkeep.rest.shaping import session_json
from chatkeep.service import default_service

router = Router()

def _iso_day(value: object) -> object:
    """Only YYYY-MM-DD (pydantic would also take a number of seconds since 1970)."""
    if isinstance(value, str) and not _DAY.fullmatch(value):
        raise ValueError("a day is YYYY-MM-DD")
    if not isinstance(value, str | date):
        raise ValueError("a day is YYYY-MM-DD")
    return value


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
Day = Annotated[date, BeforeValidator(_iso_day)]
FromDay = Annotated[Day | None, Query(alias="from", description="First UTC day, YYYY-MM-DD (default: 29 days "
                                                                  "before `to`)")]
ToDay = Annotated[Day | None, Query(description="Last UTC day, YYYY-MM-DD (default: today)")]


@router.post("/v1/sessions/<session_id>/turn/cancel", tags=["turns"], summary="Cancel the agent's turn in progress",
             responses=declare(200, SessionOut, "The session: a queued turn is cancelled at once, a running one within "
                                                "about a second (its partial reply stays, status cancelled); 409 "
                                                "when no turn is in progress", 409))
def cancel_turn(session_id: SessionIdPath, idempotency_key: IdempotencyKey = None):
    p = principal(router)
    sid = decode(ids.Kind.SESSION, session_id)

    def run() -> tuple[int, dict]:
        return 200, session_json(default_service().cancel_turn(p, sid))

    return created(p, "POST /v1/sessions/{session_id}/turn/cancel", idempotency_key, run, session_id=sid)


@router.post("/v1/sessions/<session_id>/turn", tags=["turns"],
             summary="Run the agent again on the latest user message, after a failed or cancelled turn",
             responses=declare(200, SessionOut, "The session with its new turn (queued); 409 turn_in_progress while "
                                                "one runs, conflict after a complete turn or on a closed or "
                                                "expired session", 409))
def retry_turn(session_id: SessionIdPath, idempotency_key: IdempotencyKey = None):
    p = principal(router)
    sid = decode(ids.Kind.SESSION, session_id)

    def run() -> tuple[int, dict]:
        return 200, session_json(default_service().retry_turn(p, sid))

    return created(p, "POST /v1/sessions/{session_id}/turn", idempotency_key, run, session_id=sid)


@router.get("/v1/usage", tags=["turns"], summary="The workspace's agent tokens per day and model (service principals)",
            responses=declare(200, UsageList, "Rows for the days in [from, to] (default: the last 30 days); none "
                                              "when from is after to", 403))
def usage(from_: FromDay = None, to: ToDay = None):
    p = principal(router)
    return json_response(200, {"data": default_service().workspace_usage(p, from_, to)})
