"""The GraphQL endpoint as a protocol: Apollo's automatic persisted queries, introspection on/off, depth and
cost bounds (alias and fragment bombs refused before anything runs), malformed requests, and error masking
(no stack traces, unexpected exceptions become INTERNAL_SERVER_ERROR)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import pytest
from conftest import claims_for, http_event, reset_caches


def send(body: Any = None, *, raw: str | None = None) -> tuple[int, dict[str, Any]]:
    from chatkeep.graphql.server import handle

    response = handle(http_event("POST", "/graphql", body=body, raw_body=raw, claims=claims_for()))
    assert response["headers"]["content-type"].startswith("application/json")
    text = response["body"]
    assert "Traceback" not in text and 'File "' not in text, text
    return response["statusCode"], json.loads(text)


def codes(result: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors", [])]


def unique(query: str) -> str:
    """A document text no earlier test has sent (the document cache is per Lambda instance)."""
    return f"# {uuid.uuid4()}\n{query}"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


LIST = "query($t: Float!) { getTodoChatSessions(todoId: $t) { sessions { id } totalCount } }"


# ------------------------------------------------------------------------------- persisted queries

def test_given_an_unknown_hash_when_sending_it_alone_then_persisted_query_not_found(dynamodb):
    query = unique(LIST)
    status, result = send({"variables": {"t": 1}, "extensions": apq(sha(query))})
    assert status == 200  # Apollo's link reads the code and retries with the query
    assert codes(result) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert result["errors"][0]["message"] == "PersistedQueryNotFound"


def test_given_hash_and_query_then_it_runs_and_afterwards_the_hash_alone_runs(dynamodb):
    query = unique(LIST)
    digest = sha(query)
    status, first = send({"query": query, "variables": {"t": 1}, "extensions": apq(digest)})
    assert status == 200 and first["data"] == {"getTodoChatSessions": {"sessions": [], "totalCount": 0}}
    status, second = send({"variables": {"t": 1}, "extensions": apq(digest), "operationName": None})
    assert status == 200 and second == first
    status, upper = send({"variables": {"t": 1}, "extensions": apq(digest.upper())})
    assert status == 200 and upper == first


def test_given_a_hash_that_does_not_match_the_query_then_refused_and_not_stored(dynamodb):
    query = unique(LIST)
    wrong = sha(query + " ")
    status, result = send({"query": query, "variables": {"t": 1}, "extensions": apq(wrong)})
    assert status == 400 and codes(result) == ["BAD_REQUEST"]
    status, result = send({"variables": {"t": 1}, "extensions": apq(wrong)})
    assert codes(result) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_given_an_unsupported_persisted_query_version_then_not_supported(dynamodb):
    query = unique(LIST)
    status, result = send({"query": query, "variables": {"t": 1},
                           "extensions": {"persistedQuery": {"version": 2, "sha256Hash": sha(query)}}})
    assert status == 400 and codes(result) == ["PERSISTED_QUERY_NOT_SUPPORTED"]


def test_given_a_persisted_query_that_is_refused_then_it_is_not_stored(dynamodb):
    query = unique("{ __schema { types { name } } }")
    status, result = send({"query": query, "extensions": apq(sha(query))})
    assert status == 400 and codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    status, result = send({"extensions": apq(sha(query))})
    assert codes(result) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_given_a_query_sent_without_extensions_then_its_hash_is_known_afterwards(dynamodb):
    query = unique(LIST)
    send({"query": query, "variables": {"t": 1}})
    status, result = send({"variables": {"t": 1}, "extensions": apq(sha(query))})
    assert status == 200 and "errors" not in result


# ------------------------------------------------------------------------------- introspection

def test_given_default_settings_when_introspecting_then_refused_but_typename_allowed(dynamodb):
    status, result = send({"query": unique("{ __schema { queryType { name } } }")})
    assert status == 400 and codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    status, result = send({"query": unique('{ __type(name: "TodoChatSession") { name } }')})
    assert status == 400 and codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    status, result = send({"query": unique("{ __typename }")})
    assert status == 200 and result == {"data": {"__typename": "Query"}}
    status, result = send({"query": unique(
        "mutation($d: TodoChatSessionInput!) { createTodoChatSession(data: $d) { __typename id } }"),
        "variables": {"d": {"todoId": 5}}})
    assert status == 200 and result["data"]["createTodoChatSession"]["__typename"] == "TodoChatSession"


def test_given_enable_introspection_when_introspecting_then_the_schema_is_served(dynamodb, monkeypatch):
    monkeypatch.setenv("ENABLE_INTROSPECTION", "true")
    reset_caches()
    try:
        status, result = send({"query": unique("{ __schema { queryType { name } mutationType { name } } }")})
        assert status == 200
        assert result["data"]["__schema"] == {"queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"}}
        status, result = send({"query": unique('{ __type(name: "TodoChatSessionInput") { inputFields { name } } }')})
        names = {f["name"] for f in result["data"]["__type"]["inputFields"]}
        assert {"todoId", "title", "defaultBotId", "uiLayout"} <= names
    finally:
        monkeypatch.delenv("ENABLE_INTROSPECTION")
        reset_caches()


# ------------------------------------------------------------------------------- depth and cost

def assert_refused_quickly(body: dict[str, Any], code: str = "GRAPHQL_VALIDATION_FAILED") -> dict[str, Any]:
    started = time.perf_counter()
    status, result = send(body)
    elapsed = time.perf_counter() - started
    assert status == 400 and codes(result)[:1] == [code], result
    assert elapsed < 1.0, f"refusal took {elapsed:.2f}s"
    assert "data" not in result
    return result


def test_given_a_query_deeper_than_the_limit_then_refused(dynamodb):
    inner = "id"
    for _ in range(11):
        inner = f"sentBy {{ {inner} }}"
    result = assert_refused_quickly({"query": unique(f"{{ getOneTodoChatSession(sessionId: 1) {{ {inner} }} }}")})
    assert "deep" in result["errors"][0]["message"]


def test_given_an_expensive_query_then_refused_for_its_cost(dynamodb):
    query = "{ getTodoChatSessions(todoId: 1, limit: 100) { sessions { messages { id message createdAt } } } }"
    result = assert_refused_quickly({"query": unique(query)})
    assert "cost" in result["errors"][0]["message"]


def test_given_the_guides_queries_then_within_depth_and_cost(dynamodb):
    query = "query($s: Float!) { getOneTodoChatSession(sessionId: $s) { id title createdAt updatedAt defaultBotId " \
            "todoId messages { id message createdAt sentBy { id firstName } isBotReply } } }"
    status, result = send({"query": unique(query), "variables": {"s": 1}})
    assert status == 200 and codes(result) == ["NOT_FOUND"]


def test_given_an_alias_bomb_then_refused_quickly(dynamodb):
    aliases = " ".join(f"a{i}: getOneTodoChatSession(sessionId: 1) {{ messages {{ id }} }}" for i in range(100))
    assert_refused_quickly({"query": unique(f"{{ {aliases} }}")})


def test_given_a_huge_alias_bomb_then_refused_by_the_token_limit_before_parsing_it_all(dynamodb):
    aliases = " ".join(f"a{i}: __typename" for i in range(3000))  # 9000 tokens, under the 64 KB body limit
    assert_refused_quickly({"query": unique(f"{{ {aliases} }}")}, code="GRAPHQL_PARSE_FAILED")


def test_given_a_fragment_bomb_then_refused_quickly_without_expanding_it(dynamodb):
    fragments = ["fragment F0 on TodoChatSession { id title }"]
    fragments += [f"fragment F{i} on TodoChatSession {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 40)]
    query = "{ getOneTodoChatSession(sessionId: 1) { ...F39 } } " + " ".join(fragments)
    assert_refused_quickly({"query": unique(query)})


def test_given_cyclic_fragments_then_refused_quickly(dynamodb):
    query = "{ getOneTodoChatSession(sessionId: 1) { ...A } } fragment A on TodoChatSession { id ...B } " \
            "fragment B on TodoChatSession { title ...A }"
    assert_refused_quickly({"query": unique(query)})


def test_given_a_deep_query_through_fragments_then_refused(dynamodb):
    fragments = ["fragment D0 on ChatUser { id }"]
    fragments += [f"fragment D{i} on ChatUser {{ ...D{i - 1} }}" for i in range(1, 5)]
    query = "{ getOneTodoChatSession(sessionId: 1) { messages { sentBy { ...D4 } } } } " + " ".join(fragments)
    status, result = send({"query": unique(query)})
    assert status == 200  # fragments add no depth of their own: this one is fine
    assert codes(result) == ["NOT_FOUND"]


# ------------------------------------------------------------------------------- malformed requests

@pytest.mark.parametrize("raw, status, code", [
    ('[{"query": "{ __typename }"}, {"query": "{ __typename }"}]', 400, "BAD_REQUEST"),  # batched
    ("[]", 400, "BAD_REQUEST"),
    ("{not json", 400, "BAD_REQUEST"),
    ("", 400, "BAD_REQUEST"),
    ('"just a string"', 400, "BAD_REQUEST"),
    ("{}", 400, "BAD_REQUEST"),                                                           # no query
    ('{"query": 5}', 400, "BAD_REQUEST"),
    ('{"query": "{ __typename }", "variables": [1]}', 400, "BAD_REQUEST"),
    ('{"query": "{ __typename }", "operationName": 7}', 400, "BAD_REQUEST"),
    ('{"query": "{ getTodoChatSessions(todoId: 1) { "}', 400, "GRAPHQL_PARSE_FAILED"),
    ('{"query": "query { nope }"}', 400, "GRAPHQL_VALIDATION_FAILED"),
    ('{"query": "{ getTodoChatSessions { totalCount } }"}', 400, "GRAPHQL_VALIDATION_FAILED"),  # missing arg
])
def test_given_a_malformed_request_then_an_error_code_and_no_500(dynamodb, raw, status, code):
    got_status, result = send(raw=raw)
    assert (got_status, codes(result)[:1]) == (status, [code]), result


def test_given_an_oversized_body_then_413(dynamodb):
    status, result = send(raw=json.dumps({"query": "{ __typename }", "variables": {"x": "y" * 70_000}}))
    assert status == 413 and codes(result) == ["BAD_REQUEST"]


def test_given_a_base64_body_as_api_gateway_may_send_then_it_is_decoded(dynamodb):
    import base64

    from chatkeep.graphql.server import handle

    event = http_event("POST", "/graphql", body={"query": unique("{ __typename }")}, claims=claims_for())
    event["body"], event["isBase64Encoded"] = base64.b64encode(event["body"].encode()).decode(), True
    assert json.loads(handle(event)["body"]) == {"data": {"__typename": "Query"}}


def test_given_two_operations_then_operation_name_selects_one(dynamodb):
    query = unique("query A { __typename } query B { getTodoChatSessions(todoId: 3) { totalCount } }")
    status, result = send({"query": query, "operationName": "B"})
    assert status == 200 and result["data"] == {"getTodoChatSessions": {"totalCount": 0}}
    status, result = send({"query": query})
    assert status == 200 and codes(result) == ["BAD_USER_INPUT"]  # ambiguous without operationName


@pytest.mark.parametrize("variables", [{"t": "abc"}, {}, {"t": None}, {"t": True}])
def test_given_variables_that_do_not_coerce_then_bad_user_input_not_internal_error(dynamodb, variables):
    status, result = send({"query": LIST, "variables": variables})
    assert status == 200 and codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["message"] != "Internal server error"


@pytest.mark.parametrize("literal", ["Infinity", "NaN", "-Infinity"])
def test_given_non_finite_numbers_in_variables_then_bad_user_input(dynamodb, literal):
    status, result = send(raw=f'{{"query": {json.dumps(LIST)}, "variables": {{"t": {literal}}}}}')
    assert status == 200 and codes(result) == ["BAD_USER_INPUT"]


# ------------------------------------------------------------------------------- masking

def test_given_an_unexpected_exception_in_a_resolver_then_masked_as_internal_server_error(dynamodb, monkeypatch):
    from chatkeep.service import ChatService

    def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("connection string postgres://admin:hunter2@db")

    monkeypatch.setattr(ChatService, "list_sessions", boom)
    status, result = send({"query": LIST, "variables": {"t": 1}})
    assert status == 200
    assert result["data"] is None
    assert result["errors"][0]["message"] == "Internal server error"
    assert result["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "hunter2" not in json.dumps(result) and "RuntimeError" not in json.dumps(result)


def test_given_a_resolver_returning_a_value_the_schema_cannot_serialise_then_masked(dynamodb, monkeypatch):
    from chatkeep.graphql import resolvers

    original = resolvers.session_dict

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**original(*args, **kwargs), "message_count": "not a number"}

    monkeypatch.setattr(resolvers, "session_dict", broken)
    status, result = send({"query": unique(
        "mutation { createTodoChatSession(data: {todoId: 9}) { id messageCount } }")})
    assert status == 200 and codes(result) == ["INTERNAL_SERVER_ERROR"]
    assert result["errors"][0]["message"] == "Internal server error"


def test_given_a_failure_in_a_non_null_root_field_then_masked_with_its_path(dynamodb, monkeypatch):
    from chatkeep.service import ChatService

    monkeypatch.setattr(ChatService, "search_sessions", lambda *a, **k: (_ for _ in ()).throw(KeyError("x")))
    query = unique("{ list: getTodoChatSessions(todoId: 1) { totalCount } "
                   "search: getSearchTodoChatSessions(todoId: 1, searchQuery: \"a\") { id } }")
    status, result = send({"query": query})
    assert status == 200 and codes(result) == ["INTERNAL_SERVER_ERROR"]
    assert result["errors"][0]["path"] == ["search"]
    assert result["data"] is None  # the search field is non-null: its null reaches the root
