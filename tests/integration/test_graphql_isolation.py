"""Tenancy through the GraphQL API: every operation aimed at another user's or another workspace's todo or
session answers NOT_FOUND (never FORBIDDEN: it does not confirm that anything exists) and changes nothing,
checked against the table itself afterwards."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import claims_for, http_event, make_principal

TODO = 12345
OWNER = claims_for("alice", "ws1", name="Alice")
ATTACKERS = {
    "another user": claims_for("mallory", "ws1", name="Mallory"),
    "same sub in another workspace": claims_for("alice", "ws2", name="Alice"),
    "a service of another workspace": claims_for("svc", "ws2", name="Svc", scope="chatkeep/service"),
}
SESSION_OPS = {
    "getOneTodoChatSession": ("query($id: Float!) { getOneTodoChatSession(sessionId: $id) { id title } }", {}),
    "updateTodoChatSession": ("mutation($id: Float!, $data: TodoChatSessionInput!) { updateTodoChatSession("
                              "id: $id, data: $data) { id } }", {"data": {"title": "pwned"}}),
    "updateTodoChatSession (with todoId)": (
        "mutation($id: Float!, $data: TodoChatSessionInput!) { updateTodoChatSession(id: $id, data: $data) { id } }",
        {"data": {"title": "pwned", "todoId": TODO}}),
    "updateTodoChatSessionCustomBotConfig": (
        "mutation($id: Float!, $bot: Float!) { updateTodoChatSessionCustomBotConfig(data: {sessionId: $id, "
        "botId: $bot, model: \"evil\", temperature: 2}) { id } }", {"bot": "AGENT"}),
    "deleteTodoChatSession": ("mutation($id: Float!) { deleteTodoChatSession(id: $id) { id } }", {}),
    "closeTodoChatSession": ("mutation($id: Float!) { closeTodoChatSession(id: $id) { id } }", {}),
    "createTodoChatMessage": ("mutation($id: Float!) { createTodoChatMessage(data: {sessionId: $id, "
                              "message: \"injected\"}) { id } }", {}),
    "createTodoChatMessage (bot reply)": (
        "mutation($id: Float!) { createTodoChatMessage(data: {sessionId: $id, message: \"injected\", "
        "isBotReply: true}) { id } }", {}),
    "messages paging (before)": (
        "query($id: Float!, $m: Float) { getOneTodoChatSession(sessionId: $id) { id messages(before: $m) { id } } }",
        {"m": "MESSAGE"}),
}


def gql(query: str, variables: dict[str, Any], claims: dict[str, str]) -> dict[str, Any]:
    from chatkeep.graphql.server import handle

    response = handle(http_event("POST", "/graphql", body={"query": query, "variables": variables}, claims=claims))
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("errors"), result
    return result["data"]


def codes(result: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors", [])]


def snapshot(client: Any) -> dict[str, list[dict[str, Any]]]:
    """Every item of every table (a test-side Scan: the product never scans)."""
    out = {}
    for table in client.list_tables()["TableNames"]:
        items, kwargs = [], {"TableName": table}
        while True:
            page = client.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        out[table] = sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return out


def ws1_items(snap: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {table: [i for i in items if i.get("pk", {}).get("S", "").startswith("W#ws1#")]
            for table, items in snap.items()}


@pytest.fixture
def victim(dynamodb: Any, chat_service: Any) -> dict[str, Any]:
    """alice's todo with one session and one message in workspace ws1, and an agent of ws1."""
    agent = chat_service.create_agent(make_principal(workspace="ws1", service=True), slug="helper", name="Helper")
    session = ok(gql("mutation($d: TodoChatSessionInput!) { createTodoChatSession(data: $d) { id } }",
                     {"d": {"todoId": TODO, "title": "Alice's private chat"}}, OWNER))["createTodoChatSession"]
    message = ok(gql("mutation($d: TodoChatMessageInput!) { createTodoChatMessage(data: $d) { id } }",
                     {"d": {"sessionId": session["id"], "message": "secret"}}, OWNER))["createTodoChatMessage"]
    return {"session": session["id"], "message": message["id"], "agent": agent.id}


@pytest.mark.parametrize("attacker", ATTACKERS)
@pytest.mark.parametrize("operation", SESSION_OPS)
def test_given_another_users_or_workspaces_session_when_operating_on_it_then_not_found_and_unchanged(
        dynamodb, victim, attacker, operation):
    query, extra = SESSION_OPS[operation]
    variables = {"id": victim["session"]}
    for name, value in extra.items():
        placeholders = {"AGENT": victim["agent"], "MESSAGE": victim["message"]}
        variables[name] = placeholders.get(value, value) if isinstance(value, str) else value
    claims = ATTACKERS[attacker]
    # A user may never post bot replies: that refusal (FORBIDDEN) comes before any lookup, for every id.
    expected = "FORBIDDEN" if "bot reply" in operation and "scope" not in claims else "NOT_FOUND"
    before = snapshot(dynamodb)
    result = gql(query, variables, claims)
    assert codes(result) == [expected], result
    assert "secret" not in json.dumps(result) and "Alice" not in json.dumps(result)
    assert snapshot(dynamodb) == before
    # No oracle: the answer is the one a session that does not exist gets.
    unknown = gql(query, {**variables, "id": 67890}, claims)
    assert codes(unknown) == [expected]
    assert [e["message"] for e in unknown["errors"]] == [e["message"] for e in result["errors"]]


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_given_another_users_or_workspaces_sessions_when_deleting_many_then_none_deleted(dynamodb, victim, attacker):
    before = snapshot(dynamodb)
    result = gql("mutation($ids: [Int!]!) { deleteManyTodoChatSession(ids: $ids) }", {"ids": [victim["session"]]},
                 ATTACKERS[attacker])
    assert ok(result) == {"deleteManyTodoChatSession": 0}
    assert snapshot(dynamodb) == before


def test_given_another_users_todo_when_listing_then_not_found(dynamodb, victim):
    before = snapshot(dynamodb)
    for variables in ({"todoId": TODO}, {"todoId": TODO, "limit": 100, "offset": 0}):
        result = gql("query($todoId: Float!, $limit: Int, $offset: Int) { getTodoChatSessions(todoId: $todoId, "
                     "limit: $limit, offset: $offset) { sessions { id } totalCount } }", variables,
                     ATTACKERS["another user"])
        assert codes(result) == ["NOT_FOUND"] and result["data"] is None
    assert snapshot(dynamodb) == before


@pytest.mark.parametrize("search", [None, "", "secret", "alice private"])
def test_given_another_users_todo_when_searching_then_not_found(dynamodb, victim, search):
    result = gql("query($t: Float!, $q: String) { getSearchTodoChatSessions(todoId: $t, searchQuery: $q) { id } }",
                 {"t": TODO, "q": search}, ATTACKERS["another user"])
    assert codes(result) == ["NOT_FOUND"]


def test_given_another_users_todo_when_creating_a_session_in_it_then_not_found_and_unchanged(dynamodb, victim):
    before = snapshot(dynamodb)
    result = gql("mutation($d: TodoChatSessionInput!) { createTodoChatSession(data: $d) { id } }",
                 {"d": {"todoId": TODO, "title": "squatter"}}, ATTACKERS["another user"])
    assert codes(result) == ["NOT_FOUND"]
    assert snapshot(dynamodb) == before


@pytest.mark.parametrize("attacker", ["same sub in another workspace", "a service of another workspace"])
def test_given_the_same_todo_id_in_another_workspace_then_it_is_a_different_empty_todo(dynamodb, victim, attacker):
    """Ids are per workspace: todo 12345 of ws2 is not alice's todo of ws1. It reads as empty (nobody used it
    there), writing to it touches ws2 only, and ws1 is unchanged."""
    claims = ATTACKERS[attacker]
    before = ws1_items(snapshot(dynamodb))
    listed = ok(gql("query($t: Float!) { getTodoChatSessions(todoId: $t) { sessions { id title } totalCount } }",
                    {"t": TODO}, claims))
    assert listed == {"getTodoChatSessions": {"sessions": [], "totalCount": 0}}
    found = ok(gql("query($t: Float!) { getSearchTodoChatSessions(todoId: $t, searchQuery: \"secret\") { id } }",
                   {"t": TODO}, claims))
    assert found == {"getSearchTodoChatSessions": []}
    created = ok(gql("mutation($d: TodoChatSessionInput!) { createTodoChatSession(data: $d) { id todoId } }",
                     {"d": {"todoId": TODO, "title": "theirs"}}, claims))["createTodoChatSession"]
    assert created["id"] != victim["session"]
    assert ws1_items(snapshot(dynamodb)) == before
    mine = ok(gql("query($t: Float!) { getTodoChatSessions(todoId: $t) { sessions { id } totalCount } }",
                  {"t": TODO}, OWNER))["getTodoChatSessions"]
    assert mine == {"sessions": [{"id": victim["session"]}], "totalCount": 1}


def test_given_another_users_session_when_deleting_then_not_found_and_unchanged(dynamodb, victim):
    before = snapshot(dynamodb)
    result = gql("mutation($id: Float!) { deleteTodoChatSession(id: $id) { id } }", {"id": victim["session"]},
                 ATTACKERS["another user"])
    assert codes(result) == ["NOT_FOUND"]
    assert snapshot(dynamodb) == before
    assert ok(gql("query($id: Float!) { getOneTodoChatSession(sessionId: $id) { id } }", {"id": victim["session"]},
                  OWNER))["getOneTodoChatSession"]["id"] == victim["session"]


def test_given_a_service_principal_of_the_workspace_then_it_sees_and_serves_every_todo(dynamodb, victim):
    service = claims_for("support-bot", "ws1", name="Bot", scope="chatkeep/service")
    listed = ok(gql("query($t: Float!) { getTodoChatSessions(todoId: $t) { sessions { id } totalCount } }",
                    {"t": TODO}, service))["getTodoChatSessions"]
    assert listed["totalCount"] == 1
    reply = ok(gql("mutation($id: Float!) { createTodoChatMessage(data: {sessionId: $id, message: \"hi\", "
                   "isBotReply: true}) { isBotReply } }", {"id": victim["session"]}, service))
    assert reply == {"createTodoChatMessage": {"isBotReply": True}}
    # A session the service creates in alice's todo belongs to alice: she sees it.
    created = ok(gql("mutation($d: TodoChatSessionInput!) { createTodoChatSession(data: $d) { id } }",
                     {"d": {"todoId": TODO, "title": "opened by support"}}, service))["createTodoChatSession"]
    mine = ok(gql("query($id: Float!) { getOneTodoChatSession(sessionId: $id) { title } }", {"id": created["id"]},
                  OWNER))
    assert mine == {"getOneTodoChatSession": {"title": "opened by support"}}


def test_given_another_users_starter_then_getting_mine_never_returns_theirs(dynamodb, victim):
    alice = ok(gql("query { getOrCreateUserStartTodoChatSession(botSlug: \"helper\") { id todoId } }", {}, OWNER))
    mallory = ok(gql("query { getOrCreateUserStartTodoChatSession(botSlug: \"helper\") { id todoId } }", {},
                     ATTACKERS["another user"]))
    a, m = alice["getOrCreateUserStartTodoChatSession"], mallory["getOrCreateUserStartTodoChatSession"]
    assert a["id"] != m["id"] and a["todoId"] != m["todoId"]
    assert codes(gql("query($t: Float!) { getTodoChatSessions(todoId: $t) { totalCount } }", {"t": a["todoId"]},
                     ATTACKERS["another user"])) == ["NOT_FOUND"]
