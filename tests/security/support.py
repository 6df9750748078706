"""Helpers shared by tests/security and tests/reliability: in-process GraphQL/REST calls through the real
handlers, table snapshots (scans: fine in tests, never in product code), the in-process stream settle,
and the "no internal detail" check every error answer must pass."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from tests.conftest import http_event

# Nothing of this may ever reach a client: stack traces, library internals, table names.
LEAK_PATTERNS = (
    "Traceback",
    'File "',
    "botocore",
    "boto3",
    "ClientError",
    "ConditionalCheckFailed",
    "TransactionCanceled",
    "ProvisionedThroughputExceeded",
    "ChatTable",
    "SearchIndexTable",
    "IdempotencyTable",
    "chatkeep-chat",
    "chatkeep-search",
    "site-packages",
    "layers/common",
    "W#",  # our key prefixes
)
STABLE_CODE = re.compile(r"^[A-Z][A-Z_]+$")
STABLE_REST_CODE = re.compile(r"^[a-z][a-z_]+$")
SERVICE_SCOPE = "chatkeep/service"


def claims(sub: str = "alice", workspace: str | None = "ws1", *, name: str | None = "Alice",
           scope: str | None = None) -> dict[str, str]:
    now = int(time.time())
    out = {"sub": sub, "iss": "chatkeep-local", "aud": "chatkeep", "iat": str(now), "exp": str(now + 3600)}
    if workspace is not None:
        out["workspace_id"] = workspace
    if name:
        out["given_name"] = name
    if scope:
        out["scope"] = scope
    return out


def gql_event(query: str | None = None, variables: dict[str, Any] | None = None, *,
              claims_: dict[str, str] | None, headers: dict[str, str] | None = None,
              raw_body: str | None = None, base64_body: bytes | None = None,
              extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    if raw_body is None and base64_body is None:
        body: dict[str, Any] = {}
        if query is not None:
            body["query"] = query
        if variables is not None:
            body["variables"] = variables
        if extensions is not None:
            body["extensions"] = extensions
        raw_body = json.dumps(body)
    event = http_event("POST", "/graphql", raw_body=raw_body or "", claims=claims_, headers=headers)
    if claims_ is None:
        event["headers"].pop("authorization", None)
    if base64_body is not None:
        event["body"] = base64.b64encode(base64_body).decode()
        event["isBase64Encoded"] = True
    return event


def call_gql(event: dict[str, Any], service: Any = None) -> tuple[int, dict[str, Any], str]:
    """Runs the GraphQL handler in process; -> (status, parsed body, raw body)."""
    from chatkeep.graphql.server import handle

    response = handle(event, service=service)
    raw = response["body"]
    return response["statusCode"], json.loads(raw), raw


def gql(query: str, variables: dict[str, Any] | None = None, *, claims_: dict[str, str] | None,
        headers: dict[str, str] | None = None, service: Any = None) -> tuple[int, dict[str, Any], str]:
    return call_gql(gql_event(query, variables, claims_=claims_, headers=headers), service)


def rest_event(method: str, path: str, *, claims_: dict[str, str] | None, body: Any = None,
               raw_body: str | None = None, headers: dict[str, str] | None = None,
               query: dict[str, str] | None = None) -> dict[str, Any]:
    event = http_event(method, path, body=body, raw_body=raw_body, claims=claims_, headers=headers, query=query)
    if claims_ is None:
        event["headers"].pop("authorization", None)
    return event


def call_rest(event: dict[str, Any]) -> tuple[int, Any, str]:
    from chatkeep.rest.app import handler

    response = handler(event, None)
    raw = response.get("body") or ""
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8", "replace")
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return response["statusCode"], parsed, raw


def assert_no_internals(raw: str, *secrets: str) -> None:
    """No stack trace, library name, table name or key leaks; none of `secrets` appears."""
    for pattern in (*LEAK_PATTERNS, *secrets):
        assert pattern not in raw, f"{pattern!r} leaked in the response: {raw[:500]}"


def assert_gql_errors_clean(body: dict[str, Any], raw: str) -> None:
    """Every GraphQL error has a stable code and a message a person can act on; no internals."""
    assert_no_internals(raw)
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code and STABLE_CODE.match(code), error
        message = error.get("message")
        assert isinstance(message, str) and 3 <= len(message) <= 500, error


def assert_rest_error_clean(status: int, body: Any, raw: str) -> None:
    assert_no_internals(raw)
    if status >= 400:
        if status in (401, 403) and isinstance(body, dict) and set(body) <= {"message", "reason"}:
            return  # the authorizer's answer ({"message": "Unauthorized"}, and locally the reason)
        assert isinstance(body, dict) and isinstance(body.get("error"), dict), raw[:300]
        assert STABLE_REST_CODE.match(body["error"].get("code") or ""), raw[:300]
        message = body["error"].get("message")
        assert isinstance(message, str) and 3 <= len(message) <= 1000, raw[:300]


def gql_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return (errors[0].get("extensions") or {}).get("code") if errors else None


# ---------------------------------------------------------------- tables


def scan_all(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _key(item: dict[str, Any]) -> str:
    names = ("pk", "sk") if "pk" in item else ("id",)
    return "|".join(json.dumps(item.get(n), sort_keys=True) for n in names)


def snapshot(client: Any, tables: list[str] | None = None) -> dict[str, dict[str, str]]:
    """{table: {key: item as canonical JSON}} of every table (or the given ones)."""
    names = tables or client.list_tables()["TableNames"]
    return {t: {_key(i): json.dumps(i, sort_keys=True) for i in scan_all(client, t)} for t in names}


def diff(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """-> {"changed": [...], "removed": [...], "added": [...]} keys (prefixed with the table)."""
    out: dict[str, list[str]] = {"changed": [], "removed": [], "added": []}
    for table, items in before.items():
        now = after.get(table, {})
        for key, value in items.items():
            if key not in now:
                out["removed"].append(f"{table}:{key}")
            elif now[key] != value:
                out["changed"].append(f"{table}:{key}")
        out["added"] += [f"{table}:{k}" for k in now if k not in items]
    return out


def settle_stream(reader: Any, rounds: int = 6) -> None:
    """Deliver the chat table's stream to the stream handler in process until it is quiet."""
    from chatkeep.stream.processor import CoalescingBatchProcessor, handle

    for _ in range(rounds):
        records = reader.read_new()
        if not records:
            return
        for start in range(0, len(records), 100):
            result = handle({"Records": records[start:start + 100]}, None, processor=CoalescingBatchProcessor())
            assert result == {"batchItemFailures": []}, result
    raise AssertionError("the stream does not settle")
