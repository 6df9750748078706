"""Cached boto3 client factories. Built lazily so cold start pays only for what a request uses,
and so tests and the local runtime can point them elsewhere (reset())."""

from __future__ import annotations

from functools import cache
from typing import Any

from chatkeep.settings import get_settings


@cache
def client(service: str) -> Any:
    import boto3  # deferred: importing boto3 is a large part of cold start
    from botocore.config import Config

    settings = get_settings()
    config = Config(
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": config}
    if settings.dynamodb_endpoint_url and service in ("dynamodb", "dynamodbstreams"):
        kwargs["endpoint_url"] = settings.dynamodb_endpoint_url
    return boto3.client(service, **kwargs)


def dynamodb() -> Any:
    return client("dynamodb")


@cache
def bedrock_runtime() -> Any:
    """The model client of agent turns. botocore's retries are off: the turn retries throttling itself, with
    backoff it records, and only before the reply's first token (docs/agents.md). Reads wait long: a model
    may think for a while between tokens."""
    import boto3
    from botocore.config import Config

    settings = get_settings()
    # total_max_attempts counts the first call too (max_attempts counts retries): 1 means no retry at all.
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                    read_timeout=settings.model_read_timeout_seconds, tcp_keepalive=True)
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": config}
    if settings.bedrock_endpoint_url:
        kwargs["endpoint_url"] = settings.bedrock_endpoint_url
    return boto3.client("bedrock-runtime", **kwargs)


@cache
def management_api(endpoint_url: str) -> Any:
    """The @connections client of a WebSocket API stage (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`,
    locally the emulator's): pushes to clients. Short timeouts and one retry: a push that cannot be made quickly
    is better dropped than holding up a batch of pushes (the connection is told apart from the failure by
    GoneException, which is never retried)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=3,
                    tcp_keepalive=True, max_pool_connections=32)
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url, region_name=get_settings().aws_region,
                        config=config)


# Lambda sets this during init. Under SnapStart and provisioned concurrency, init runs before (and outside) any
# request, and SnapStart snapshots it: pay for boto3's import and the client there. On demand, init and the first
# request are both on the first caller's path, and deferring keeps requests that never reach DynamoDB cheap.
_INIT_OFF_REQUEST_PATH = frozenset({"snap-start", "provisioned-concurrency"})


def prewarm() -> bool:
    """Create the DynamoDB client now when init is off the request path (bench/cold_start.py measures both)."""
    import os

    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") not in _INIT_OFF_REQUEST_PATH:
        return False
    dynamodb()
    return True


def reset() -> None:
    """Forget the clients (tests and the local runtime point chatkeep at another endpoint or region)."""
    client.cache_clear()
    bedrock_runtime.cache_clear()
    management_api.cache_clear()
