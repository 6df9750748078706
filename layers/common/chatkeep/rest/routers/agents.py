"""Agents: create (service principals only), list, get."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatkeep import ids, limits
from chatkeep.rest.errors import declare
from chatkeep.rest.idempotency import created
from chatkeep.rest.params import AgentIdPath, IdempotencyKey, PageLimit, decode, principal
from chatkeep.rest.responses import json_response
from chatkeep.rest.schemas import AgentList, AgentOut, CreateAgentIn
from chatkeep.rest.shaping import agent_json
from chatkeep.service import default_service

router = Router()

Cursor = Annotated[str | None, Query(pattern=limits.SLUG.pattern, description="`next_cursor` of the previous page")]


@router.post("/v1/agents", tags=["agents"], summary="Create an agent (needs scope chatkeep/service)",
             responses=declare(201, AgentOut, "The agent (the workspace's first agent becomes its default)",
                               409, 413, 415))
def create_agent(body: CreateAgentIn, idempotency_key: IdempotencyKey = None):
    p = principal(router)

    def run() -> tuple[int, dict]:
        agent = default_service().create_agent(p, slug=body.slug, name=body.name, model=body.model,
                                               temperature=body.temperature, system_prompt=body.system_prompt,
                                               provider=body.provider, max_output_tokens=body.max_output_tokens,
                                               history_window_tokens=body.history_window_tokens)
        return 201, agent_json(agent, show_system_prompt=p.is_service)

    return created(p, "POST /v1/agents", idempotency_key, run, body)


@router.get("/v1/agents", tags=["agents"], summary="List the workspace's agents (by slug)",
            responses=declare(200, AgentList, "A page of agents"))
def list_agents(limit: PageLimit = 20, cursor: Cursor = None):
    p = principal(router)
    agents, has_more = default_service().list_agents(p, limit=limit, after_slug=cursor)
    return json_response(200, {"data": [agent_json(a, show_system_prompt=p.is_service) for a in agents],
                               "has_more": has_more, "next_cursor": agents[-1].slug if has_more and agents else None})


@router.get("/v1/agents/<agent_id>", tags=["agents"], summary="Get an agent",
            responses=declare(200, AgentOut, "The agent"))
def get_agent(agent_id: AgentIdPath):
    p = principal(router)
    agent = default_service().get_agent(p, decode(ids.Kind.AGENT, agent_id))
    return json_response(200, agent_json(agent, show_system_prompt=p.is_service))
