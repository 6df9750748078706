"""POST /v1/channels, GET /v1/channels/{channel_id}."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from chatkeep import ids
from chatkeep.rest.errors import declare
from chatkeep.rest.idempotency import created
from chatkeep.rest.params import ChannelIdPath, IdempotencyKey, decode, decode_optional, principal
from chatkeep.rest.responses import json_response
from chatkeep.rest.schemas import ChannelOut, CreateChannelIn
from chatkeep.rest.shaping import channel_json
from chatkeep.service import default_service

router = Router()


@router.post("/v1/channels", tags=["channels"], summary="Create a channel",
             responses=declare(201, ChannelOut, "The channel (yours; `owner`'s, or shared by the workspace, when "
                                                "created by a service principal)", 409, 413, 415))
def create_channel(body: CreateChannelIn, idempotency_key: IdempotencyKey = None):
    p = principal(router)

    def run() -> tuple[int, dict]:
        channel = default_service().create_container(p, name=body.name, metadata=body.metadata,
                                                     agent_id=decode_optional(ids.Kind.AGENT, body.agent_id),
                                                     owner=body.owner)
        return 201, channel_json(channel)

    return created(p, "POST /v1/channels", idempotency_key, run, body)


@router.get("/v1/channels/<channel_id>", tags=["channels"], summary="Get a channel, with its session count",
            responses=declare(200, ChannelOut, "The channel"))
def get_channel(channel_id: ChannelIdPath):
    p = principal(router)
    channel = default_service().get_container(p, decode(ids.Kind.CHANNEL, channel_id))
    return json_response(200, channel_json(channel))
