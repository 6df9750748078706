"""Shared fixtures: moto DynamoDB with the tables of template.yaml, principals, payload-2.0 events,
and a DynamoDB request counter at the botocore layer."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
TABLE_ENV = {
    "ChatTable": "CHAT_TABLE_NAME",
    "SearchIndexTable": "SEARCH_TABLE_NAME",
    "IdempotencyTable": "IDEMPOTENCY_TABLE_NAME",
}

# Never reach a real AWS account from the tests.
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "ChatkeepTest",
    "POWERTOOLS_SERVICE_NAME": "chatkeep",
    "POWERTOOLS_DEV": "false",
})


def reset_caches() -> None:
    from chatkeep.aws import reset_clients
    from chatkeep.settings import reset_settings

    reset_settings()
    reset_clients()
    try:
        from chatkeep.graphql.server import default_service

        default_service.cache_clear()
    except ImportError:
        pass


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with every table of template.yaml (created from the template, never restated here)."""
    import boto3
    from chatkeep_local import moto_dynamodb
    from chatkeep_local.template import create_tables, load_template
    from moto import mock_aws

    moto_dynamodb.install()  # DynamoDB's transaction semantics (moto's copy-and-rollback is neither fast nor isolated)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        created = create_tables(client, load_template(TEMPLATE))
        for logical_id, name in created.items():
            if logical_id in TABLE_ENV:
                monkeypatch.setenv(TABLE_ENV[logical_id], name)
        monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
        reset_caches()
        yield client
        reset_caches()


@pytest.fixture
def clock_offset() -> Iterator[Any]:
    """Move chatkeep's clock in a test (`clock_offset.advance(120)`); restored afterwards."""
    from chatkeep import clock

    before = clock.offset()
    yield clock
    clock.set_offset(before)


@pytest.fixture
def chat_service(dynamodb: Any) -> Any:
    from chatkeep.repository.dynamodb import DynamoDBChatRepository
    from chatkeep.service import ChatService

    return ChatService(DynamoDBChatRepository())


def make_principal(sub: str = "alice", workspace: str = "ws1", *, name: str | None = "Alice",
                   service: bool = False) -> Any:
    from chatkeep.auth import Principal

    scopes = frozenset({"chatkeep/service"}) if service else frozenset()
    return Principal(sub=sub, workspace_id=workspace, name=name, scopes=scopes, is_service=service)


def claims_for(sub: str = "alice", workspace: str = "ws1", *, name: str | None = "Alice",
               scope: str | None = None) -> dict[str, str]:
    claims = {"sub": sub, "workspace_id": workspace, "iss": "chatkeep-local", "aud": "chatkeep",
              "iat": str(int(time.time())), "exp": str(int(time.time()) + 3600)}
    if name:
        claims["given_name"] = name
    if scope:
        claims["scope"] = scope
    return claims


def http_event(method: str, path: str, *, route_key: str | None = None, body: Any = None,
               claims: dict[str, str] | None = None, headers: dict[str, str] | None = None,
               path_parameters: dict[str, str] | None = None, query: dict[str, str] | None = None,
               raw_body: str | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event, as the JWT-authorized route would deliver it."""
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    hdrs = {"content-type": "application/json", "host": "api.example.com", "user-agent": "pytest"}
    if claims is not None:
        hdrs["authorization"] = "Bearer test-token"
    hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": hdrs,
        "requestContext": {
            "accountId": "123456789012", "apiId": "testapi", "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "pytest"},
            "requestId": str(uuid.uuid4()), "routeKey": route_key or f"{method} {path}", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if query:
        event["queryStringParameters"] = dict(query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if text is not None:
        event["body"] = text
    return event


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class RequestCounter:
    """Counts DynamoDB API calls made through chatkeep's cached client (botocore before-call hook)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.log: list[str] = []

    def __call__(self, model: Any = None, **_: Any) -> None:
        self.calls[model.name] += 1
        self.log.append(model.name)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()
        self.log.clear()


@pytest.fixture
def ddb_requests(dynamodb: Any) -> RequestCounter:
    from chatkeep import aws

    counter = RequestCounter()
    aws.dynamodb().meta.events.register("before-call.dynamodb.*", counter)
    return counter
