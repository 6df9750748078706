"""DynamoDB requests per warm GraphQL call (counted at the botocore layer of chatkeep's own client), never a
Scan, and the race-free starter session. Warm = after one call of the same document, so the document
cache and the cached clients are in place, as in a warm Lambda."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import REQUEST_COUNTS, claims_for, http_event, make_principal

TODO = 12345
SERVICE = claims_for("support-bot", name="Bot", scope="chatkeep/service")
CREATE = "mutation($data: TodoChatSessionInput!) { createTodoChatSession(data: $data) { id title createdAt " \
         "defaultBotId todoId } }"
DETAILS = "query($sessionId: Float!) { getOneTodoChatSession(sessionId: $sessionId) { id title createdAt updatedAt " \
          "defaultBotId todoId messages { id message createdAt sentBy { id firstName } isBotReply } } }"
LIST = "query($todoId: Float!, $limit: Int, $offset: Int) { getTodoChatSessions(todoId: $todoId, limit: $limit, " \
       "offset: $offset) { sessions { id title createdAt updatedAt defaultBotId } totalCount } }"
POST = "mutation($data: TodoChatMessageInput!) { createTodoChatMessage(data: $data) { id message createdAt " \
       "isBotReply sentBy { id firstName } } }"
RENAME = "mutation($data: TodoChatSessionInput!, $id: Float!) { updateTodoChatSession(data: $data, id: $id) { " \
         "id title updatedAt } }"
DELETE = "mutation($id: Float!) { deleteTodoChatSession(id: $id) { id } }"
DELETE_MANY = "mutation($ids: [Int!]!) { deleteManyTodoChatSession(ids: $ids) }"
STARTER = "query($botSlug: String) { getOrCreateUserStartTodoChatSession(botSlug: $botSlug) { id title " \
          "defaultBotId todoId } }"
BOT_CONFIG = "mutation($data: BotCustomConfigInput!) { updateTodoChatSessionCustomBotConfig(data: $data) { id } }"
CLOSE = "mutation($id: Float!) { closeTodoChatSession(id: $id) { id status } }"
SEARCH = "query($todoId: Float!, $searchQuery: String) { getSearchTodoChatSessions(todoId: $todoId, " \
         "searchQuery: $searchQuery) { id title createdAt } }"

MEASURED: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def report_measured_request_counts(request: pytest.FixtureRequest) -> Iterator[None]:
    """After this module's tests, in whatever order they ran: hands what they measured to the terminal summary
    (tests/conftest.py prints it; not under xdist, whose workers report no summary)."""
    yield
    request.config.stash.setdefault(REQUEST_COUNTS, {}).update(MEASURED)


def gql(query: str, variables: dict[str, Any] | None = None, claims: dict[str, str] | None = None) -> dict[str, Any]:
    from chatkeep.graphql.server import handle

    event = http_event("POST", "/graphql", body={"query": query, "variables": variables or {}},
                       claims=claims or claims_for())
    response = handle(event)
    assert response["statusCode"] == 200, response
    result = json.loads(response["body"])
    assert not result.get("errors"), result
    return result["data"]


def create(title: str = "t", todo: int = TODO) -> float:
    return gql(CREATE, {"data": {"todoId": todo, "title": title}})["createTodoChatSession"]["id"]


def warm(ddb_requests: Any, name: str, query: str, variables: dict[str, Any], claims: dict[str, str] | None = None,
         ) -> int:
    """Requests made by one call of an already-seen document; remembered for the report at the end."""
    ddb_requests.reset()
    gql(query, variables, claims)
    assert "Scan" not in ddb_requests.calls, ddb_requests.log
    MEASURED[name] = ddb_requests.total
    return ddb_requests.total


def test_given_a_warm_call_when_getting_one_session_then_exactly_one_query(dynamodb, ddb_requests):
    sid = create()
    gql(POST, {"data": {"sessionId": sid, "message": "hi"}})
    gql(DETAILS, {"sessionId": sid})
    assert warm(ddb_requests, "getOneTodoChatSession", DETAILS, {"sessionId": sid}) == 1
    assert ddb_requests.log == ["Query"]


def test_given_a_warm_call_when_listing_then_one_page_query_and_one_count_per_gsi1_key(dynamodb, ddb_requests):
    from chatkeep.repository.keys import ACTIVITY_SHARDS

    for i in range(25):
        create(f"s{i}")
    gql(LIST, {"todoId": TODO, "limit": 10, "offset": 0})
    gsi1_keys = ACTIVITY_SHARDS + 1  # the todo's activity shards and its own key
    assert warm(ddb_requests, "getTodoChatSessions", LIST, {"todoId": TODO, "limit": 10, "offset": 10}) <= 2 * gsi1_keys
    assert set(ddb_requests.calls) <= {"Query"}


def test_given_a_warm_call_when_creating_then_at_most_two_requests(dynamodb, ddb_requests):
    create("first")
    variables = {"data": {"todoId": TODO, "title": "second"}}
    assert warm(ddb_requests, "createTodoChatSession", CREATE, variables) <= 2


def test_given_a_warm_call_when_a_service_creates_in_a_users_todo_then_at_most_two_requests(dynamodb, ddb_requests):
    create("first")
    gql(CREATE, {"data": {"todoId": TODO, "title": "by service"}}, SERVICE)
    variables = {"data": {"todoId": TODO, "title": "by service again"}}
    assert warm(ddb_requests, "createTodoChatSession (service)", CREATE, variables, SERVICE) <= 2


def test_given_a_warm_call_when_posting_a_message_then_at_most_two_requests(dynamodb, ddb_requests):
    sid = create()
    gql(POST, {"data": {"sessionId": sid, "message": "one"}})
    assert warm(ddb_requests, "createTodoChatMessage", POST, {"data": {"sessionId": sid, "message": "two"}}) <= 2


def test_given_a_warm_call_when_renaming_then_exactly_one_request(dynamodb, ddb_requests):
    sid = create()
    gql(RENAME, {"id": sid, "data": {"title": "one"}})
    assert warm(ddb_requests, "updateTodoChatSession", RENAME, {"id": sid, "data": {"title": "two"}}) == 1
    assert ddb_requests.log == ["UpdateItem"]


def test_given_a_warm_call_when_deleting_then_exactly_one_request(dynamodb, ddb_requests):
    first, second = create("a"), create("b")
    gql(DELETE, {"id": first})
    assert warm(ddb_requests, "deleteTodoChatSession", DELETE, {"id": second}) == 1
    assert ddb_requests.log == ["DeleteItem"]


@pytest.mark.parametrize("k", [1, 25, 26, 100])
def test_given_k_sessions_when_deleting_many_then_at_most_ceil_k_100_plus_ceil_k_25_requests(
        dynamodb, ddb_requests, k):
    ids = [int(create(f"s{i}")) for i in range(k)]
    gql(DELETE_MANY, {"ids": [1]})
    assert warm(ddb_requests, f"deleteManyTodoChatSession({k})", DELETE_MANY, {"ids": ids}) <= (
        math.ceil(k / 100) + math.ceil(k / 25))
    assert gql(LIST, {"todoId": TODO})["getTodoChatSessions"]["totalCount"] == 0


@pytest.mark.parametrize("slug, budget", [(None, 2), ("helper", 2), ("general", 4)],
                         ids=["default-by-null", "other-agent", "default-by-its-slug"])
def test_given_an_existing_starter_when_getting_it_then_within_its_requests(dynamodb, ddb_requests, chat_service,
                                                                            slug, budget):
    """The pointer and the session: two GetItems. The default agent's own slug names the starter keyed for null
    (one session for both), which it finds after one miss and a read of the default agent: four."""
    chat_service.create_agent(make_principal(service=True), slug="general", name="General")  # the default
    chat_service.create_agent(make_principal(service=True), slug="helper", name="Helper")
    first = gql(STARTER, {"botSlug": slug})
    assert warm(ddb_requests, f"getOrCreateUserStartTodoChatSession (existing, {slug})", STARTER,
                {"botSlug": slug}) <= budget
    assert gql(STARTER, {"botSlug": slug}) == first


def test_given_the_other_operations_when_warm_then_small_and_never_a_scan(dynamodb, ddb_requests, chat_service):
    agent = chat_service.create_agent(make_principal(service=True), slug="helper", name="Helper")
    sid = create("billing question")
    gql(BOT_CONFIG, {"data": {"botId": agent.id, "sessionId": create("other"), "temperature": 1}})
    assert warm(ddb_requests, "updateTodoChatSessionCustomBotConfig", BOT_CONFIG,
                {"data": {"botId": agent.id, "sessionId": sid, "model": "gpt-4", "temperature": 0.7}}) <= 2
    gql(CLOSE, {"id": create("to close")})
    assert warm(ddb_requests, "closeTodoChatSession", CLOSE, {"id": sid}) <= 2
    from chatkeep.repository.keys import ACTIVITY_SHARDS, SEARCH_SHARDS

    gql(SEARCH, {"todoId": TODO, "searchQuery": ""})
    assert warm(ddb_requests, "getSearchTodoChatSessions (empty query)", SEARCH,
                {"todoId": TODO, "searchQuery": None}) <= 2 * (ACTIVITY_SHARDS + 1)
    gql(SEARCH, {"todoId": TODO, "searchQuery": "billing"})
    # The first word: the index keys of its first character; the second: the shard of the one match; one
    # BatchGetItem of the container and the matches.
    assert warm(ddb_requests, "getSearchTodoChatSessions (2 words)", SEARCH,
                {"todoId": TODO, "searchQuery": "billing question"}) <= SEARCH_SHARDS + 1 + 1


def test_given_every_operation_then_no_request_is_ever_a_scan(dynamodb, ddb_requests, chat_service):
    chat_service.create_agent(make_principal(service=True), slug="helper", name="Helper")
    ddb_requests.reset()
    sid = create("x")
    gql(POST, {"data": {"sessionId": sid, "message": "hello"}})
    gql(POST, {"data": {"sessionId": sid, "message": "bot", "isBotReply": True}}, SERVICE)
    gql(DETAILS, {"sessionId": sid})
    gql(LIST, {"todoId": TODO})
    gql(SEARCH, {"todoId": TODO, "searchQuery": "hello"})
    gql(SEARCH, {"todoId": TODO, "searchQuery": None})
    gql(RENAME, {"id": sid, "data": {"title": "y"}})
    gql(STARTER, {"botSlug": "helper"})
    gql(STARTER, {"botSlug": None})
    gql(CLOSE, {"id": sid})
    gql(DELETE, {"id": create("z")})
    gql(DELETE_MANY, {"ids": [int(sid)]})
    assert ddb_requests.total > 0
    assert "Scan" not in ddb_requests.calls, ddb_requests.calls


# ------------------------------------------------------------------------------- starter race

def starter_items(client: Any, workspace: str, sub: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(starter pointers of the user, sessions carrying a starter key) in the table itself."""
    pointers = client.query(TableName="ChatTable", KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
                            ExpressionAttributeValues={":pk": {"S": f"W#{workspace}#U#{sub}"},
                                                       ":s": {"S": "STARTER#"}})["Items"]
    sessions = [i for i in client.scan(TableName="ChatTable")["Items"]
                if i.get("type", {}).get("S") == "session" and "starter_key" in i]
    return pointers, sessions


@pytest.mark.parametrize("slugs", [["helper"] * 8, [None] * 8, [None, "helper"] * 4],
                         ids=["by-slug", "default", "default-and-its-slug"])
def test_given_concurrent_first_calls_for_one_user_and_agent_then_one_session(
        dynamodb, chat_service, monkeypatch, slugs):
    """"helper" is the workspace's default agent: null names it too."""
    from chatkeep.repository.dynamodb import DynamoDBChatRepository
    from chatkeep.service import default_service

    chat_service.create_agent(make_principal(service=True), slug="helper", name="Helper")
    default_service()  # build the shared service before the threads start, as a warm Lambda has it
    threads_n = len(slugs)
    # Force the worst case: every caller has read "no starter yet" before any of them writes.
    gate = threading.Barrier(threads_n, timeout=30)
    attempted: set[int] = set()
    create_starter = DynamoDBChatRepository.create_starter

    def gated(self: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() not in attempted:
            attempted.add(threading.get_ident())
            gate.wait()
        return create_starter(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBChatRepository, "create_starter", gated)
    start = threading.Barrier(threads_n)
    results: list[Any] = [None] * threads_n

    def call(i: int) -> None:
        start.wait()
        try:
            results[i] = gql(STARTER, {"botSlug": slugs[i]})["getOrCreateUserStartTodoChatSession"]
        except BaseException as error:  # noqa: BLE001 - reported below
            results[i] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [r for r in results if not isinstance(r, dict)]
    assert not errors, errors
    assert len(attempted) == threads_n  # all of them raced to create
    assert len({r["id"] for r in results}) == 1, results
    assert len({r["todoId"] for r in results}) == 1  # and one home todo
    pointers, sessions = starter_items(dynamodb, "ws1", "alice")
    assert len(pointers) == 1 and len(sessions) == 1
    assert pointers[0]["sid"]["N"] == str(int(results[0]["id"]))
    listed = gql(LIST, {"todoId": results[0]["todoId"]})["getTodoChatSessions"]
    assert listed["totalCount"] == 1


def test_given_concurrent_calls_without_forcing_then_still_one_session(dynamodb, chat_service):
    """The same race left to the scheduler (8 threads released together)."""
    from chatkeep.service import default_service

    chat_service.create_agent(make_principal(service=True), slug="helper", name="Helper")
    default_service()
    start = threading.Barrier(8)
    results: list[Any] = [None] * 8

    def call(i: int) -> None:
        start.wait()
        results[i] = gql(STARTER, {"botSlug": "helper"}, claims_for("bob", name="Bob"))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len({r["getOrCreateUserStartTodoChatSession"]["id"] for r in results}) == 1
    pointers, sessions = starter_items(dynamodb, "ws1", "bob")
    assert len(pointers) == 1 and len(sessions) == 1
