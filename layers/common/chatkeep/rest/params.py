"""What a route reads from the request: its typed path, query and header parameters (Powertools reads them for
the OpenAPI document; chatkeep.rest.validation validates them), the ids they carry, and the caller."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from chatkeep import ids, limits
from chatkeep.auth import Principal, principal_from_event
from chatkeep.rest.schemas import AGENT_ID_PATTERN, CHANNEL_ID_PATTERN, IDEMPOTENCY_KEY_PATTERN, SESSION_ID_PATTERN

ChannelIdPath = Annotated[str, Path(pattern=CHANNEL_ID_PATTERN, description="A channel id (`ch_...`)",
                                    examples=["ch_c1s"])]
SessionIdPath = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="A session id (`ses_...`)",
                                    examples=["ses_c1s"])]
AgentIdPath = Annotated[str, Path(pattern=AGENT_ID_PATTERN, description="An agent id (`agt_...`)",
                                  examples=["agt_c1s"])]
PageLimit = Annotated[int, Query(ge=1, le=limits.MAX_PAGE, description=f"Page size (1-{limits.MAX_PAGE})")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=IDEMPOTENCY_KEY_PATTERN,
           description="Any unique string (e.g. a UUID). A retry with the same key and body within 24 h returns "
                       "the first response and writes nothing new; the same key with another body answers 422 "
                       "idempotency_key_reused."),
]


def principal(router: Any) -> Principal:
    """The caller: chatkeep.rest.app.handler authenticates before routing and puts it in the routing context."""
    p = router.context.get("principal")
    return p if p is not None else principal_from_event(router.current_event.raw_event)


def decode(kind: ids.Kind, text: str) -> int:
    """An id of the path, query or body, already checked against its pattern (malformed -> 400 / 422)."""
    return ids.decode(kind, text)


def decode_optional(kind: ids.Kind, text: str | None) -> int | None:
    """An optional id (an absent query parameter or body field is None)."""
    return None if text is None else ids.decode(kind, text)
