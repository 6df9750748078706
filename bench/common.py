"""What every benchmark section shares: the environment, moto with the tables of template.yaml, payload-2.0
events, a botocore request counter, statistics and table printing."""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TEMPLATE = ROOT / "template.yaml"
TABLE_ENV = {"ChatTable": "CHAT_TABLE_NAME", "SearchIndexTable": "SEARCH_TABLE_NAME",
             "IdempotencyTable": "IDEMPOTENCY_TABLE_NAME"}
BENCH_ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "chatkeep", "POWERTOOLS_METRICS_NAMESPACE": "Chatkeep",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "INFO",
}


def setup_environment() -> None:
    """sys.path as the Lambda runtime sees it (+ the local runtime for moto helpers); fake credentials."""
    for sub in ("layers/common", "local", "."):
        path = str(ROOT / sub)
        if path not in sys.path:
            sys.path.insert(0, path)
    for key, value in BENCH_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.pop("DYNAMODB_ENDPOINT_URL", None)


setup_environment()


def reset_caches() -> None:
    from chatkeep.aws import reset_clients
    from chatkeep.settings import reset_settings

    reset_settings()
    reset_clients()
    from chatkeep.graphql.server import default_service

    default_service.cache_clear()
    from chatkeep.stream import processor

    processor.reset()


@contextmanager
def moto_tables() -> Iterator[Any]:
    """moto with every table of template.yaml, table names in the environment (as tests/conftest.py does)."""
    import boto3
    from chatkeep_local.template import create_tables, load_template
    from moto import mock_aws

    saved = {var: os.environ.get(var) for var in TABLE_ENV.values()}
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for logical_id, name in create_tables(client, load_template(TEMPLATE)).items():
            if logical_id in TABLE_ENV:
                os.environ[TABLE_ENV[logical_id]] = name
        reset_caches()
        try:
            yield client
        finally:
            reset_caches()
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value


class RequestCounter:
    """botocore `before-call.dynamodb.*` hook: DynamoDB API calls by operation name."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any = None, **_: Any) -> None:
        self.calls[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()

    def summary(self) -> str:
        return ", ".join(f"{n} {op}" for op, n in sorted(self.calls.items()))


def claims_for(sub: str = "alice", workspace: str = "ws1", *, name: str | None = "Alice",
               scope: str | None = None) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": sub, "workspace_id": workspace, "iss": "chatkeep-bench", "aud": "chatkeep",
              "iat": str(now), "exp": str(now + 3600)}
    if name:
        claims["given_name"] = name
    if scope:
        claims["scope"] = scope
    return claims


def http_event(method: str, path: str, *, body: Any = None, claims: dict[str, str] | None = None,
               query: dict[str, str] | None = None, route_key: str | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event as the JWT-authorized route delivers it."""
    now = time.time()
    headers = {"content-type": "application/json", "host": "api.example.com", "user-agent": "bench"}
    if claims is not None:
        headers["authorization"] = "Bearer bench-token"
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": route_key or f"{method} {path}", "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()), "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "benchapi", "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "bench"},
            "requestId": str(uuid.uuid4()), "routeKey": route_key or f"{method} {path}", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if query:
        event["queryStringParameters"] = dict(query)
    if body is not None:
        event["body"] = json.dumps(body)
    return event


class LambdaContext:
    function_name = "chatkeep-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:chatkeep-bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/chatkeep-bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(title: str, headers: list[str], rows: list[list[Any]], note: str | None = None) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = [f"\n## {title}", ""]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    if note:
        lines += ["", note]
    text = "\n".join(lines)
    print(text, flush=True)
    return text
