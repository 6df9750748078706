"""Issue 18 on POST /graphql, in process (moto): JSON and literals nested at any depth are refused with a code
(never a 500, never a request-sized log line); the work one request may ask for is bounded (mutation fields);
the cost of a document uses the `limit` it asks for (literal or variable)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.security.support import assert_gql_errors_clean, call_gql, claims, gql, gql_code, gql_event

ALICE = claims("alice", "ws1")
DEPTHS = (10, 500, 900, 990, 1000, 1100, 2000, 5000, 10_000, 100_000)
CREATE = "mutation($d: TodoChatSessionInput!){createTodoChatSession(data: $d){id}}"


def _assert_small_logs(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    out, err = capsys.readouterr()
    lines = [*out.splitlines(), *err.splitlines(), *(r.getMessage() for r in caplog.records)]
    assert all(len(line) < 4096 for line in lines), max(lines, key=len)[:300]


def _session(todo: int = 1) -> int:
    _, body, _ = gql(CREATE, {"d": {"todoId": todo}}, claims_=ALICE)
    return int(body["data"]["createTodoChatSession"]["id"])


@pytest.mark.parametrize("depth", DEPTHS)
def test_given_metadata_nested_at_any_depth_in_variables_then_a_coded_refusal_and_small_logs(
        dynamodb: Any, capsys: Any, caplog: Any, depth: int) -> None:
    deep = '{"a":' * depth + "1" + "}" * depth
    raw = json.dumps({"query": CREATE, "variables": {"d": {"todoId": 1, "metadata": "@"}}}).replace('"@"', deep)
    status, body, text = call_gql(gql_event(raw_body=raw, claims_=ALICE))
    assert status in (200, 400, 413), (depth, status, text[:300])
    assert gql_code(body) in ("BAD_USER_INPUT", "BAD_REQUEST"), text[:300]
    assert_gql_errors_clean(body, text)
    _assert_small_logs(capsys, caplog)


@pytest.mark.parametrize("depth", (10, 100, 300, 500, 900, 999))
def test_given_a_literal_nested_at_any_depth_in_the_document_then_a_coded_refusal(dynamodb: Any, depth: int) -> None:
    query = "mutation{createTodoChatSession(data:{todoId: 1, metadata: %s}){id}}" % ("[" * depth + "]" * depth)
    status, body, text = call_gql(gql_event(query, claims_=ALICE))
    assert status in (200, 400), (depth, status, text[:300])
    assert gql_code(body) in ("BAD_USER_INPUT", "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"), text[:300]
    assert_gql_errors_clean(body, text)
