"""In-process harness shared by the tests and the benchmarks: payload-2.0 events as the JWT-authorized
routes deliver them, a Lambda-like context, the declared handlers, a DynamoDB request counter, and the cache
reset that lets a run point chatkeep at fresh tables."""

from __future__ import annotations

import functools
import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"  # the tests' and benchmarks' template


# Every chatkeep module that caches what it built from the environment (settings, clients, what holds them), each
# with one documented reset(). tests/unit/test_module_resets.py keeps this list complete.
CACHING_MODULES = (
    "chatkeep.settings",
    "chatkeep.aws",
    "chatkeep.service",
    "chatkeep.graphql.server",
    "chatkeep.rest.idempotency",
    "chatkeep.stream.processor",
    "chatkeep.agents.worker",
    "chatkeep.realtime.tokens",
    "chatkeep.realtime.subscriptions",
    "chatkeep.realtime.publisher",
    "chatkeep.realtime.handler",
)


def reset_caches() -> None:
    """Forget settings, clients and what was built from them (after the environment changed). A module that is
    not imported yet has nothing to forget."""
    for name in CACHING_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            module.reset()


@functools.cache
def declared_handler(logical_id: str, template: str = str(REPO_TEMPLATE)) -> Any:
    """A function of template.yaml, loaded once per process as the local runtime loads it (by file path, under
    a module name of its own: every function's module is app.py)."""
    from chatkeep_local.lambda_runtime import load_handler
    from chatkeep_local.template import functions, load_template

    return load_handler(functions(load_template(template))[logical_id])


def claims_for(sub: str = "alice", workspace: str = "ws1", *, name: str | None = "Alice",
               scope: str | None = None) -> dict[str, str]:
    """JWT claims as API Gateway's authorizer hands them to the function (every value a string)."""
    now = int(time.time())
    claims = {"sub": sub, "workspace_id": workspace, "iss": "chatkeep-local", "aud": "chatkeep",
              "iat": str(now), "exp": str(now + 3600)}
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
    hdrs = {"content-type": "application/json", "host": "api.example.com", "user-agent": "chatkeep-harness"}
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
                     "userAgent": "chatkeep-harness"},
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


class RequestCounter:
    """botocore `before-call.dynamodb.*` hook: DynamoDB API calls by operation name, in order."""

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

    def summary(self) -> str:
        return ", ".join(f"{n} {op}" for op, n in sorted(self.calls.items()))


class LambdaContext:
    function_name = "chatkeep-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:chatkeep-test"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/chatkeep-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000
