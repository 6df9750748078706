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


# ---------------------------------------------------------------- the cost uses the `limit` asked for

LIST_WITH_MESSAGES = "{getTodoChatSessions(todoId: 1, limit: %s){totalCount sessions{id messages%s{id}}}}"


@pytest.mark.parametrize("limit", [1, 5, 24])
def test_given_a_small_literal_limit_when_listing_sessions_with_their_messages_then_served(
        dynamodb: Any, limit: int) -> None:
    # Before: refused as "may cost 20102" for every limit from 1 to 100.
    _session()
    status, body, text = call_gql(gql_event(LIST_WITH_MESSAGES % (limit, ""), claims_=ALICE))
    assert status == 200 and "errors" not in body, text[:300]
    assert body["data"]["getTodoChatSessions"]["totalCount"] == 1


def test_given_five_sessions_with_their_last_messages_then_served_and_a_full_page_of_all_messages_refused(
        dynamodb: Any) -> None:
    status, body, text = call_gql(gql_event(LIST_WITH_MESSAGES % (5, "(limit: 3)"), claims_=ALICE))
    assert status == 200 and "errors" not in body, text[:300]
    status, body, text = call_gql(gql_event(LIST_WITH_MESSAGES % (100, ""), claims_=ALICE))
    assert status == 400 and gql_code(body) == "GRAPHQL_VALIDATION_FAILED" and "may cost" in text, text[:300]


VARIABLE_LIMIT = ("query($n: Int%s){getTodoChatSessions(todoId: 1, limit: $n){sessions{id messages{id}}}}")


@pytest.mark.parametrize(("default", "variables", "served"), [
    ("", {"n": 5}, True),
    ("", {"n": 24}, True),
    ("", {}, True),  # absent: the argument's default (20)
    ("", {"n": None}, True),  # null: the default too
    ("", {"n": 25}, False),  # 25 x (1 + 200) > 5000
    ("", {"n": 100}, False),
    (" = 50", {}, False),  # the variable's own default counts
    (" = 5", {}, True),
    (" = 50", {"n": 2}, True),
])
def test_given_a_variable_limit_then_the_cost_uses_its_value(dynamodb: Any, default: str,
                                                              variables: dict[str, Any], served: bool) -> None:
    query = VARIABLE_LIMIT % default
    for _ in range(2):  # the second time from the document cache
        status, body, text = call_gql(gql_event(query, variables, claims_=ALICE))
        if served:
            assert status == 200 and "errors" not in body, text[:300]
        else:
            assert status == 400 and gql_code(body) == "GRAPHQL_VALIDATION_FAILED", text[:300]
            assert "may cost" in text and "limit is 5000" in text, text[:300]


# ---------------------------------------------------------------- mutation fields per request

def post_fields(sid: int, count: int, alias: str = "m") -> str:
    return " ".join(f"{alias}{i}: createTodoChatMessage(data: {{sessionId: {sid}, message: $m}}) {{ id }}"
                    for i in range(count))


def _messages_written(dynamodb: Any) -> int:
    items = dynamodb.scan(TableName="ChatTable", Select="COUNT", FilterExpression="#t = :m",
                          ExpressionAttributeNames={"#t": "type"}, ExpressionAttributeValues={":m": {"S": "message"}})
    return items["Count"]


@pytest.mark.parametrize("fields", [6, 20, 165])
def test_given_more_aliased_mutations_than_the_bound_then_refused_naming_it_and_nothing_written(
        dynamodb: Any, fields: int) -> None:
    sid = _session()
    # The shortest spelling (one variable for every field): 165 fit in the 2,000-token parse limit.
    flood = "".join(f"m{i}:createTodoChatMessage(data:$d){{id}}" for i in range(fields))
    document = f"mutation Flood($d: TodoChatMessageInput!){{{flood}}}"
    status, body, text = call_gql(gql_event(document, {"d": {"sessionId": sid, "message": "hi"}}, claims_=ALICE))
    assert status == 400 and gql_code(body) == "GRAPHQL_VALIDATION_FAILED", text[:300]
    assert f"Operation 'Flood' has {fields} mutation fields; the limit is 5 per request" in text, text[:300]
    assert _messages_written(dynamodb) == 0


def test_given_mutation_fields_spread_from_fragments_then_they_count_too(dynamodb: Any) -> None:
    sid = _session()
    document = (f"mutation($m: String!){{ ...A ...B }} fragment A on Mutation {{ {post_fields(sid, 3)} }} "
                f"fragment B on Mutation {{ ... on Mutation {{ {post_fields(sid, 3, 'n')} }} }}")
    status, body, text = call_gql(gql_event(document, {"m": "hello"}, claims_=ALICE))
    assert status == 400 and "has 6 mutation fields" in text, text[:300]
    assert _messages_written(dynamodb) == 0


def test_given_as_many_mutation_fields_as_the_bound_then_all_run(dynamodb: Any) -> None:
    sid = _session()
    document = f"mutation($m: String!){{ __typename {post_fields(sid, 5)} }}"
    status, body, text = call_gql(gql_event(document, {"m": "hello"}, claims_=ALICE))
    assert status == 200 and "errors" not in body and len(body["data"]) == 6, text[:300]
    assert _messages_written(dynamodb) == 5
