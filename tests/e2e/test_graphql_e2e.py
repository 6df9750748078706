"""The guide's flow over HTTP against `chatkeep dev` (fixture `local_api`): create, details, rename, list with the
guide's pagination loop until totalCount, starter session, search, delete many; with the error codes a client
sees. Each test uses its own workspace (the runtime and its tables are shared by the session)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]

GET_SESSIONS = """
query GetTodoChatSessions($todoId: Float!, $limit: Int, $offset: Int) {
  getTodoChatSessions(todoId: $todoId, limit: $limit, offset: $offset) {
    sessions { id title createdAt updatedAt defaultBotId }
    totalCount
  }
}"""
CREATE_SESSION = """
mutation CreateTodoChatSession($data: TodoChatSessionInput!) {
  createTodoChatSession(data: $data) { id title createdAt defaultBotId todoId }
}"""
GET_SESSION = """
query GetOneTodoChatSession($sessionId: Float!) {
  getOneTodoChatSession(sessionId: $sessionId) {
    id title createdAt updatedAt defaultBotId todoId
    messages { id message createdAt sentBy { id firstName } isBotReply }
  }
}"""
UPDATE_SESSION = """
mutation UpdateTodoChatSession($data: TodoChatSessionInput!, $id: Float!) {
  updateTodoChatSession(data: $data, id: $id) { id title updatedAt }
}"""
GET_STARTER_SESSION = """
query GetOrCreateUserStartTodoChatSession($botSlug: String) {
  getOrCreateUserStartTodoChatSession(botSlug: $botSlug) { id title defaultBotId todoId }
}"""
SEARCH_SESSIONS = """
query GetSearchTodoChatSessions($todoId: Float!, $searchQuery: String) {
  getSearchTodoChatSessions(todoId: $todoId, searchQuery: $searchQuery) { id title createdAt }
}"""
DELETE_SESSION = "mutation DeleteTodoChatSession($id: Float!) { deleteTodoChatSession(id: $id) { id } }"
DELETE_MANY = "mutation DeleteManyTodoChatSession($ids: [Int!]!) { deleteManyTodoChatSession(ids: $ids) }"
CREATE_MESSAGE = """
mutation CreateTodoChatMessage($data: TodoChatMessageInput!) {
  createTodoChatMessage(data: $data) { id message isBotReply sentBy { id firstName } }
}"""
CLOSE = "mutation CloseTodoChatSession($id: Float!) { closeTodoChatSession(id: $id) { id status } }"


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("errors"), result
    return result["data"]


def codes(result: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors", [])]


def workspace() -> str:
    return f"ws-e2e-{uuid.uuid4().hex[:10]}"


def register_agent(local_api: Any, ws: str, slug: str, name: str = "Agent") -> int:
    """An agent of `ws`, registered by a service principal: over REST (POST /v1/agents) when that route
    answers, else straight through the service layer against the runtime's DynamoDB (a separate process,
    so this test process's settings and clients stay untouched). Returns the agent's number."""
    service = local_api.token("agent-admin", ws, name="Admin", scope="chatkeep/service")
    response = local_api.request("POST", "/v1/agents", token=service, json={"slug": slug, "name": name})
    if response.status_code == 201:
        from chatkeep import ids

        return ids.decode(ids.Kind.AGENT, response.json()["id"])  # REST shows ids as agt_...
    endpoint = local_api.health()["dynamodb"]
    script = (
        "import sys\n"
        "from chatkeep.auth import Principal\n"
        "from chatkeep.repository.dynamodb import DynamoDBChatRepository\n"
        "from chatkeep.service import ChatService\n"
        "p = Principal(sub='agent-admin', workspace_id=sys.argv[1], name='Admin',"
        " scopes=frozenset({'chatkeep/service'}), is_service=True)\n"
        "print(ChatService(DynamoDBChatRepository()).create_agent(p, slug=sys.argv[2], name=sys.argv[3]).id)\n"
    )
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": endpoint, "CHAT_TABLE_NAME": "ChatTable",
           "SEARCH_TABLE_NAME": "SearchIndexTable", "PYTHONPATH": str(REPO / "layers" / "common")}
    out = subprocess.run([sys.executable, "-c", script, ws, slug, name], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_given_the_guides_flow_over_http_then_every_step_answers_as_the_guide_expects(local_api):
    ws = workspace()
    token = local_api.token("user-1", ws, name="Ada")
    todo = 12345

    # Create (Step 2), then enough sessions for three pages of the guide's loop.
    first = ok(local_api.gql(CREATE_SESSION, {"data": {"todoId": todo, "title": "Customer Support"}}, token))
    session = first["createTodoChatSession"]
    assert session["title"] == "Customer Support" and session["todoId"] == todo
    created = [session["id"]]
    for i in range(22):
        created.append(ok(local_api.gql(CREATE_SESSION, {"data": {"todoId": todo, "title": f"Chat {i}"}},
                                        token))["createTodoChatSession"]["id"])

    # Details with messages (Step 3), rendered as the guide's usage code does.
    ok(local_api.gql(CREATE_MESSAGE, {"data": {"sessionId": session["id"], "message": "Where is my invoice?"}},
                     token))
    service = local_api.token("support-bot", ws, name="Bot", scope="chatkeep/service")
    reply = ok(local_api.gql(CREATE_MESSAGE, {"data": {"sessionId": session["id"], "message": "Here it is.",
                                                       "isBotReply": True}}, service))
    assert reply["createTodoChatMessage"]["isBotReply"] is True and reply["createTodoChatMessage"]["sentBy"] is None
    details = ok(local_api.gql(GET_SESSION, {"sessionId": session["id"]}, token))["getOneTodoChatSession"]
    lines = [f"{'Bot' if m['isBotReply'] else m['sentBy']['firstName']}: {m['message']}" for m in details["messages"]]
    assert lines == ["Ada: Where is my invoice?", "Bot: Here it is."]

    # Rename.
    renamed = ok(local_api.gql(UPDATE_SESSION, {"id": session["id"], "data": {"title": "Billing"}}, token))
    assert renamed["updateTodoChatSession"]["title"] == "Billing"

    # The guide's pagination loop, until totalCount.
    page_size, offset, rounds = 10, 0, 0
    data = ok(local_api.gql(GET_SESSIONS, {"todoId": todo, "limit": page_size, "offset": offset}, token))
    total = data["getTodoChatSessions"]["totalCount"]
    everything = data["getTodoChatSessions"]["sessions"]
    while len(everything) < total:
        rounds += 1
        assert rounds < 10, "the pagination loop would not end"
        offset += page_size
        page = ok(local_api.gql(GET_SESSIONS, {"todoId": todo, "limit": page_size, "offset": offset}, token))
        everything = [*everything, *page["getTodoChatSessions"]["sessions"]]
    assert total == 23 and sorted(s["id"] for s in everything) == sorted(created)
    assert everything[0]["id"] == session["id"]  # most recent activity first: it got the messages

    # Starter session: one per user and agent.
    agent_id = register_agent(local_api, ws, "my-agent-slug", "My agent")
    starter = ok(local_api.gql(GET_STARTER_SESSION, {"botSlug": "my-agent-slug"}, token))
    again = ok(local_api.gql(GET_STARTER_SESSION, {"botSlug": "my-agent-slug"}, token))
    assert starter == again
    assert starter["getOrCreateUserStartTodoChatSession"]["defaultBotId"] == agent_id
    assert codes(local_api.gql(GET_STARTER_SESSION, {"botSlug": "nobody"}, token)) == ["NOT_FOUND"]

    # Search, once the stream processor has indexed the writes.
    local_api.drain()
    found = ok(local_api.gql(SEARCH_SESSIONS, {"todoId": todo, "searchQuery": "invoice"}, token))
    assert [s["id"] for s in found["getSearchTodoChatSessions"]] == [session["id"]]

    # Delete one, then many (the guide's batch delete), and the lists agree.
    ok(local_api.gql(DELETE_SESSION, {"id": created[-1]}, token))
    deleted = ok(local_api.gql(DELETE_MANY, {"ids": [int(i) for i in created[1:]]}, token))
    assert deleted == {"deleteManyTodoChatSession": 21}
    after = ok(local_api.gql(GET_SESSIONS, {"todoId": todo, "limit": 100, "offset": 0}, token))
    assert after["getTodoChatSessions"] == {
        "sessions": [{**everything[0], "updatedAt": after["getTodoChatSessions"]["sessions"][0]["updatedAt"]}],
        "totalCount": 1}
    assert codes(local_api.gql(GET_SESSION, {"sessionId": created[-1]}, token)) == ["NOT_FOUND"]


def test_given_http_clients_then_the_error_codes_are_those_of_the_design(local_api):
    ws = workspace()
    token = local_api.token("user-2", ws, name="Bo")
    other = local_api.token("user-3", ws, name="Cy")
    created = ok(local_api.gql(CREATE_SESSION, {"data": {"todoId": 7, "title": "mine"}}, token))
    session = created["createTodoChatSession"]

    assert codes(local_api.gql(GET_SESSION, {"sessionId": session["id"]}, other)) == ["NOT_FOUND"]
    assert codes(local_api.gql(GET_SESSIONS, {"todoId": 7}, other)) == ["NOT_FOUND"]
    assert codes(local_api.gql(CREATE_SESSION, {"data": {"title": "x" * 201, "todoId": 7}}, token)) == [
        "BAD_USER_INPUT"]
    assert codes(local_api.gql(CREATE_MESSAGE, {"data": {"sessionId": session["id"], "message": "x",
                                                         "isBotReply": True}}, token)) == ["FORBIDDEN"]
    ok(local_api.gql(CLOSE, {"id": session["id"]}, token))
    assert codes(local_api.gql(CREATE_MESSAGE, {"data": {"sessionId": session["id"], "message": "x"}}, token)) == [
        "SESSION_CLOSED"]
    assert codes(local_api.gql(DELETE_MANY, {"ids": [99999999999]}, token)) == ["BAD_USER_INPUT"]
    # Introspection: on under chatkeep dev (its local default), off in a deployment unless enabled
    # (tests/security/test_hostile_graphql.py, tests/unit/test_template.py).
    assert "TodoChatSession" in {t["name"] for t in ok(local_api.gql("{ __schema { types { name } } }", None,
                                                                        token))["__schema"]["types"]}
    assert codes(local_api.gql("{ getTodoChatSessions(", None, token)) == ["GRAPHQL_PARSE_FAILED"]

    unauthenticated = local_api.request("POST", "/graphql", json={"query": "{ __typename }"})
    assert unauthenticated.status_code == 401  # the authorizer refuses before the function runs
    batched = local_api.request("POST", "/graphql", token=token,
                                json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}])
    assert batched.status_code == 400 and codes(batched.json()) == ["BAD_REQUEST"]
    invalid = local_api.request("POST", "/graphql", token=token, data="{nope",
                                headers={"content-type": "application/json"})
    assert invalid.status_code == 400 and "Traceback" not in invalid.text


def test_given_an_idle_timeout_when_the_clock_passes_it_then_session_expired_but_readable(local_api):
    ws = workspace()
    token = local_api.token("user-4", ws, name="Di")
    session = ok(local_api.gql(CREATE_SESSION, {"data": {"todoId": 3, "title": "short", "idleTimeoutSeconds": 60}},
                               token))["createTodoChatSession"]
    ok(local_api.gql(CREATE_MESSAGE, {"data": {"sessionId": session["id"], "message": "hi"}}, token))
    local_api.advance_clock(120)
    assert codes(local_api.gql(CREATE_MESSAGE, {"data": {"sessionId": session["id"], "message": "late"}},
                               token)) == ["SESSION_EXPIRED"]
    status = "query($s: Float!) { getOneTodoChatSession(sessionId: $s) { status messages { message } } }"
    view = ok(local_api.gql(status, {"s": session["id"]}, token))
    assert view["getOneTodoChatSession"] == {"status": "EXPIRED", "messages": [{"message": "hi"}]}


def test_given_apollos_automatic_persisted_queries_over_http_then_hash_only_works_after_registration(local_api):
    import hashlib

    token = local_api.token("user-5", workspace(), name="Ed")
    query = f"# {uuid.uuid4()}\n{GET_SESSIONS}"
    digest = hashlib.sha256(query.encode()).hexdigest()
    ext = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    variables = {"todoId": 1, "limit": 5, "offset": 0}
    miss = local_api.request("POST", "/graphql", token=token, json={"variables": variables, "extensions": ext})
    assert miss.status_code == 200 and codes(miss.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    full = local_api.request("POST", "/graphql", token=token,
                             json={"query": query, "variables": variables, "extensions": ext})
    assert full.json() == {"data": {"getTodoChatSessions": {"sessions": [], "totalCount": 0}}}
    hit = local_api.request("POST", "/graphql", token=token, json={"variables": variables, "extensions": ext})
    assert hit.json() == full.json()
    assert json.loads(hit.text)  # plain JSON, as Apollo's HttpLink expects
