"""Every GraphQL operation of the guide (plus createTodoChatMessage and closeTodoChatSession) through
`chatkeep.graphql.server.handle(event)` under moto: the happy path with the guide's own documents (taken from
events/graphql_*.json, which carry them verbatim), and each operation's error paths: not found, bad input,
expired, closed, forbidden."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from conftest import claims_for, http_event, make_principal

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "chatkeep/service"
TODO = 12345


def guide_document(operation: str) -> str:
    """The guide's document for an operation: the body of its sample event."""
    event = json.loads((ROOT / "events" / f"graphql_{operation}.json").read_text())
    return json.loads(event["body"])["query"]


DOCS = {op: guide_document(op) for op in (
    "getTodoChatSessions", "getOneTodoChatSession", "getOrCreateUserStartTodoChatSession",
    "getSearchTodoChatSessions", "createTodoChatSession", "updateTodoChatSession",
    "updateTodoChatSessionCustomBotConfig", "deleteTodoChatSession", "deleteManyTodoChatSession",
    "createTodoChatMessage", "closeTodoChatSession")}

SESSION_FIELDS = ("id title createdAt updatedAt defaultBotId todoId uiLayout status messageCount expiresAt "
                  "lastMessageAt metadata botConfig { botId model temperature }")
FULL_SESSION = f"query($id: Float!) {{ getOneTodoChatSession(sessionId: $id) {{ {SESSION_FIELDS} " \
               "messages { id message createdAt isBotReply sentBy { id firstName } sessionId } } }"
CREATE_FULL = f"mutation($data: TodoChatSessionInput!) {{ createTodoChatSession(data: $data) {{ {SESSION_FIELDS} }} }}"


def gql(query: str, variables: dict[str, Any] | None = None, *, claims: dict[str, str] | None = None,
        status: int = 200) -> dict[str, Any]:
    response = handle_event({"query": query, "variables": variables or {}}, claims or claims_for())
    assert response["statusCode"] == status, response
    assert "Traceback" not in response["body"] and 'File "' not in response["body"]
    return json.loads(response["body"])


def handle_event(body: Any, claims: dict[str, str] | None) -> dict[str, Any]:
    from chatkeep.graphql.server import handle

    return handle(http_event("POST", "/graphql", body=body, claims=claims))


def data(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("errors"), result
    return result["data"]


def codes(result: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors", [])]


def create(todo: float = TODO, title: str | None = "Customer Support", claims: dict[str, str] | None = None,
           **fields: Any) -> dict[str, Any]:
    payload = {"todoId": todo, **({"title": title} if title is not None else {}), **fields}
    return data(gql(CREATE_FULL, {"data": payload}, claims=claims))["createTodoChatSession"]


def post(session_id: float, message: str = "hello", *, bot: bool | None = None,
         claims: dict[str, str] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"sessionId": session_id, "message": message}
    if bot is not None:
        payload["isBotReply"] = bot
    return gql(DOCS["createTodoChatMessage"], {"data": payload}, claims=claims)


def details(session_id: float, claims: dict[str, str] | None = None) -> dict[str, Any]:
    return gql(FULL_SESSION, {"id": session_id}, claims=claims)


# ------------------------------------------------------------------------------- createTodoChatSession

def test_given_the_guides_create_when_creating_then_the_session_is_returned_with_its_todo(dynamodb):
    result = data(gql(DOCS["createTodoChatSession"], {"data": {"todoId": TODO, "title": "Product Questions"}}))
    session = result["createTodoChatSession"]
    assert session["title"] == "Product Questions"
    assert session["todoId"] == TODO
    assert session["defaultBotId"] is None
    assert session["id"] == int(session["id"]) and 0 < session["id"] < 2**31
    assert session["createdAt"].endswith("Z")


def test_given_a_session_when_read_then_its_float_ids_are_json_integers_and_fractions_stay(dynamodb, chat_service):
    """Whole Float values print as integers (`"id":1553259272`), as a JavaScript server prints them; a fraction
    (a temperature) keeps its decimals. The schema still says Float."""
    agent = chat_service.create_agent(make_principal(service=True), slug="helper", name="Helper")
    session = create(defaultBotId=agent.id)
    gql(DOCS["updateTodoChatSessionCustomBotConfig"],
        {"data": {"sessionId": session["id"], "botId": agent.id, "model": "m", "temperature": 0.7}})
    post(session["id"], "hello")
    query = f"query($id: Float!) {{ getOneTodoChatSession(sessionId: $id) {{ {SESSION_FIELDS} messages {{ id }} }} }}"
    raw = handle_event({"query": query, "variables": {"id": session["id"]}}, claims_for())["body"]

    shown = json.loads(raw)["data"]["getOneTodoChatSession"]
    for name, value in (("id", shown["id"]), ("todoId", shown["todoId"]), ("defaultBotId", shown["defaultBotId"]),
                        ("botId", shown["botConfig"]["botId"]), ("message id", shown["messages"][0]["id"])):
        assert type(value) is int and f":{value}" in raw, name
    assert ".0," not in raw and ".0}" not in raw, raw
    assert shown["botConfig"]["temperature"] == 0.7
    from chatkeep.graphql.server import schema

    fields = schema().type_map["TodoChatSession"].fields  # type: ignore[union-attr]
    assert (str(fields["id"].type), str(fields["todoId"].type)) == ("Float!", "Float!")


def test_given_a_new_session_then_it_is_active_with_an_expiry_and_no_messages(dynamodb):
    session = create(uiLayout="COMPACT", metadata={"plan": "pro", "seats": 3, "trial": False, "note": None})
    assert session["status"] == "ACTIVE"
    assert session["uiLayout"] == "COMPACT"
    assert session["messageCount"] == 0 and session["lastMessageAt"] is None
    assert session["metadata"] == {"plan": "pro", "seats": 3, "trial": False, "note": None}
    assert session["expiresAt"] > session["createdAt"]


@pytest.mark.parametrize("payload, code", [
    ({"title": "no todo"}, "BAD_USER_INPUT"),                                # todoId missing
    ({"todoId": TODO, "title": "x" * 201}, "BAD_USER_INPUT"),               # title > 200
    ({"todoId": 1.5}, "BAD_USER_INPUT"),                                    # id not whole
    ({"todoId": 0}, "BAD_USER_INPUT"),                                      # id out of range
    ({"todoId": -3}, "BAD_USER_INPUT"),
    ({"todoId": 2**31}, "BAD_USER_INPUT"),
    ({"todoId": 1e300}, "BAD_USER_INPUT"),
    ({"todoId": TODO, "uiLayout": "HUGE"}, "BAD_USER_INPUT"),               # not an enum value
    ({"todoId": TODO, "idleTimeoutSeconds": 59}, "BAD_USER_INPUT"),          # below 60 s
    ({"todoId": TODO, "idleTimeoutSeconds": 30 * 86400 + 1}, "BAD_USER_INPUT"),
    ({"todoId": TODO, "metadata": {f"k{i}": i for i in range(51)}}, "BAD_USER_INPUT"),   # > 50 keys
    ({"todoId": TODO, "metadata": {"k" * 65: 1}}, "BAD_USER_INPUT"),        # key > 64 chars
    ({"todoId": TODO, "metadata": {"k": "v" * 513}}, "BAD_USER_INPUT"),     # string value > 512
    ({"todoId": TODO, "metadata": {"nested": {"a": 1}}}, "BAD_USER_INPUT"),  # not flat
    ({"todoId": TODO, "metadata": {"list": [1, 2]}}, "BAD_USER_INPUT"),
    ({"todoId": TODO, "metadata": [1, 2]}, "BAD_USER_INPUT"),
    ({"todoId": TODO, "metadata": {f"k{i:02d}": "v" * 500 for i in range(20)}}, "BAD_USER_INPUT"),  # > 8 KB
    ({"todoId": TODO, "defaultBotId": 424242}, "NOT_FOUND"),                 # no such agent
])
def test_given_bad_input_when_creating_then_refused_and_nothing_written(dynamodb, payload, code):
    result = gql(DOCS["createTodoChatSession"], {"data": payload})
    assert codes(result) == [code]
    assert result["data"] is None
    listed = data(gql(DOCS["getTodoChatSessions"], {"todoId": TODO}))["getTodoChatSessions"]
    assert listed == {"sessions": [], "totalCount": 0}


def test_given_a_title_of_exactly_200_characters_when_creating_then_accepted(dynamodb):
    assert create(title="é" * 200)["title"] == "é" * 200


# ------------------------------------------------------------------------------- getOneTodoChatSession

def test_given_messages_when_getting_one_session_then_the_guides_query_shows_them_in_order(dynamodb):
    session = create()
    for text in ("first", "second", "third"):
        data(post(session["id"], text))
    result = data(gql(DOCS["getOneTodoChatSession"], {"sessionId": session["id"]}))["getOneTodoChatSession"]
    assert result["id"] == session["id"] and result["todoId"] == TODO
    assert [m["message"] for m in result["messages"]] == ["first", "second", "third"]
    first = result["messages"][0]
    assert first["isBotReply"] is False
    assert first["sentBy"] == {"id": "alice", "firstName": "Alice"}
    # The guide's usage code renders them without failing.
    rendered = [f"{'Bot' if m['isBotReply'] else m['sentBy']['firstName']}: {m['message']}" for m in result["messages"]]
    assert rendered[0] == "Alice: first"


def test_given_more_messages_than_the_page_when_paging_back_with_before_then_older_messages_follow(dynamodb):
    session = create()
    for i in range(5):
        data(post(session["id"], f"m{i}"))
    page = "query($id: Float!, $before: Float) { getOneTodoChatSession(sessionId: $id) { " \
           "messages(limit: 2, before: $before) { id message } } }"
    newest = data(gql(page, {"id": session["id"]}))["getOneTodoChatSession"]["messages"]
    assert [m["message"] for m in newest] == ["m3", "m4"]
    older = data(gql(page, {"id": session["id"], "before": newest[0]["id"]}))["getOneTodoChatSession"]["messages"]
    assert [m["message"] for m in older] == ["m1", "m2"]


def test_given_an_unknown_session_when_getting_it_then_null_and_not_found(dynamodb):
    result = gql(DOCS["getOneTodoChatSession"], {"sessionId": 67890})
    assert result["data"] == {"getOneTodoChatSession": None}
    assert codes(result) == ["NOT_FOUND"]


@pytest.mark.parametrize("value", [1.5, 0, -1, 2**31, 1e300])
def test_given_an_id_that_is_not_whole_or_out_of_range_when_getting_then_bad_user_input(dynamodb, value):
    assert codes(gql(DOCS["getOneTodoChatSession"], {"sessionId": value})) == ["BAD_USER_INPUT"]


def test_given_a_before_cursor_from_another_session_then_bad_user_input(dynamodb):
    one, two = create(), create()
    other = data(post(two["id"], "elsewhere"))["createTodoChatMessage"]
    doc = "query($id: Float!, $b: Float) { getOneTodoChatSession(sessionId: $id) { messages(before: $b) { id } } }"
    assert codes(gql(doc, {"id": one["id"], "b": other["id"]})) == ["BAD_USER_INPUT"]


# ------------------------------------------------------------------------------- getTodoChatSessions

def test_given_sessions_when_listing_then_most_recent_activity_first_and_total_count(dynamodb):
    a, b, c = create(title="a"), create(title="b"), create(title="c")
    data(post(a["id"], "activity makes a the most recent"))
    listed = data(gql(DOCS["getTodoChatSessions"], {"todoId": TODO}))["getTodoChatSessions"]
    assert [s["id"] for s in listed["sessions"]] == [a["id"], c["id"], b["id"]]
    assert listed["totalCount"] == 3


def test_given_an_unused_todo_when_listing_then_empty(dynamodb):
    listed = data(gql(DOCS["getTodoChatSessions"], {"todoId": 999}))["getTodoChatSessions"]
    assert listed == {"sessions": [], "totalCount": 0}


def test_given_23_sessions_when_running_the_guides_pagination_loop_then_it_ends_with_every_session(dynamodb):
    created = {create(title=f"s{i}")["id"] for i in range(23)}
    page_size, offset, rounds = 10, 0, 0
    first = data(gql(DOCS["getTodoChatSessions"], {"todoId": TODO, "limit": page_size, "offset": offset}))
    total = first["getTodoChatSessions"]["totalCount"]
    everything = first["getTodoChatSessions"]["sessions"]
    while len(everything) < total:  # the guide's loop, with a guard so a bug fails instead of hanging
        rounds += 1
        assert rounds < 10, "the guide's pagination loop would not terminate"
        offset += page_size
        page = data(gql(DOCS["getTodoChatSessions"], {"todoId": TODO, "limit": page_size, "offset": offset}))
        assert page["getTodoChatSessions"]["totalCount"] == total
        everything = [*everything, *page["getTodoChatSessions"]["sessions"]]
    assert total == 23 and rounds == 2
    assert {s["id"] for s in everything} == created and len(everything) == 23


def test_given_expired_closed_and_purged_sessions_when_paging_then_total_count_agrees_with_pages(
        dynamodb, clock_offset):
    short = [create(title=f"short{i}", idleTimeoutSeconds=60) for i in range(3)]
    clock_offset.advance(120)  # the short ones expired (still readable, still listed)
    kept = [create(title=f"kept{i}") for i in range(4)]
    data(gql(DOCS["closeTodoChatSession"], {"id": kept[0]["id"]}))
    listed = data(gql(DOCS["getTodoChatSessions"], {"todoId": TODO, "limit": 100}))["getTodoChatSessions"]
    assert listed["totalCount"] == len(listed["sessions"]) == 7
    # Past retention the expired ones are gone even before DynamoDB's TTL deletes them (no resurrection).
    clock_offset.advance(30 * 86400)
    pages, offset = [], 0
    while True:
        page = data(gql(DOCS["getTodoChatSessions"], {"todoId": TODO, "limit": 2, "offset": offset}))
        pages.append(page["getTodoChatSessions"])
        offset += 2
        if offset >= page["getTodoChatSessions"]["totalCount"]:
            break
    ids = [s["id"] for p in pages for s in p["sessions"]]
    assert {p["totalCount"] for p in pages} == {len(ids)}
    assert not {s["id"] for s in short} & set(ids)
    assert codes(details(short[0]["id"])) == ["NOT_FOUND"]


@pytest.mark.parametrize("variables", [
    {"todoId": TODO, "limit": 0}, {"todoId": TODO, "limit": 101}, {"todoId": TODO, "offset": -1},
    {"todoId": 1.5}, {"todoId": 0},
])
def test_given_bad_paging_or_todo_when_listing_then_bad_user_input(dynamodb, variables):
    assert codes(gql(DOCS["getTodoChatSessions"], variables)) == ["BAD_USER_INPUT"]


def test_given_null_limit_and_offset_when_listing_then_defaults_apply(dynamodb):
    for i in range(3):
        create(title=f"s{i}")
    listed = data(gql(DOCS["getTodoChatSessions"], {"todoId": TODO, "limit": None, "offset": None}))
    assert listed["getTodoChatSessions"]["totalCount"] == 3


# ------------------------------------------------------------------------------- updateTodoChatSession

def test_given_a_session_when_renaming_with_the_guides_mutation_then_title_and_updated_at_change(dynamodb,
                                                                                                clock_offset):
    session = create()
    clock_offset.advance(5)
    result = data(gql(DOCS["updateTodoChatSession"], {"id": session["id"], "data": {"title": "Premium Support"}}))
    updated = result["updateTodoChatSession"]
    assert updated["title"] == "Premium Support" and updated["updatedAt"] > session["updatedAt"]
    again = data(details(session["id"]))["getOneTodoChatSession"]
    assert again["title"] == "Premium Support" and again["todoId"] == TODO


def test_given_a_session_when_updating_layout_metadata_and_same_todo_then_accepted(dynamodb):
    session = create()
    doc = "mutation($id: Float!, $data: TodoChatSessionInput!) { updateTodoChatSession(id: $id, data: $data) " \
          "{ id uiLayout metadata todoId title } }"
    updated = data(gql(doc, {"id": session["id"], "data": {"todoId": TODO, "uiLayout": "COMPACT",
                                                          "metadata": {"a": "b"}}}))["updateTodoChatSession"]
    assert updated["uiLayout"] == "COMPACT" and updated["metadata"] == {"a": "b"}
    assert updated["title"] == "Customer Support"  # untouched fields stay


@pytest.mark.parametrize("changes, code", [
    ({"title": "x" * 201}, "BAD_USER_INPUT"),
    ({"todoId": TODO + 1}, "BAD_USER_INPUT"),                  # todoId cannot move a session
    ({"idleTimeoutSeconds": 120}, "BAD_USER_INPUT"),           # creation only
    ({"metadata": {"deep": {"x": 1}}}, "BAD_USER_INPUT"),
    ({"defaultBotId": 31337}, "NOT_FOUND"),                    # no such agent
    ({"defaultBotId": 2.5}, "BAD_USER_INPUT"),
])
def test_given_bad_changes_when_updating_then_refused_and_session_unchanged(dynamodb, changes, code):
    session = create()
    before = data(details(session["id"]))
    assert codes(gql(DOCS["updateTodoChatSession"], {"id": session["id"], "data": changes})) == [code]
    assert data(details(session["id"])) == before


def test_given_an_unknown_session_when_updating_then_not_found(dynamodb):
    assert codes(gql(DOCS["updateTodoChatSession"], {"id": 67890, "data": {"title": "t"}})) == ["NOT_FOUND"]


# ----------------------------------------------------------------- updateTodoChatSessionCustomBotConfig

def test_given_an_agent_when_setting_custom_bot_config_then_stored(dynamodb, chat_service):
    agent = chat_service.create_agent(make_principal(service=True), slug="support", name="Support bot")
    session = create()
    variables = {"data": {"botId": agent.id, "sessionId": session["id"], "model": "gpt-4", "temperature": 0.7}}
    assert data(gql(DOCS["updateTodoChatSessionCustomBotConfig"], variables)) == {
        "updateTodoChatSessionCustomBotConfig": {"id": session["id"]}}
    config = data(details(session["id"]))["getOneTodoChatSession"]["botConfig"]
    assert config == {"botId": agent.id, "model": "gpt-4", "temperature": 0.7}


@pytest.mark.parametrize("config, code", [
    ({"temperature": 2.01}, "BAD_USER_INPUT"),
    ({"temperature": -0.1}, "BAD_USER_INPUT"),
    ({"model": "m" * 101}, "BAD_USER_INPUT"),
    ({"botId": 555}, "NOT_FOUND"),                   # no such agent
    ({"sessionId": 67890}, "NOT_FOUND"),              # no such session
    ({"botId": 0.5}, "BAD_USER_INPUT"),
])
def test_given_bad_bot_config_when_updating_then_refused_and_unchanged(dynamodb, chat_service, config, code):
    agent = chat_service.create_agent(make_principal(service=True), slug="support", name="Support bot")
    session = create()
    before = data(details(session["id"]))
    variables = {"data": {"botId": agent.id, "sessionId": session["id"], "model": "gpt-4", "temperature": 1.0,
                          **config}}
    assert codes(gql(DOCS["updateTodoChatSessionCustomBotConfig"], variables)) == [code]
    assert data(details(session["id"])) == before


def test_given_temperature_bounds_when_setting_bot_config_then_0_and_2_accepted(dynamodb, chat_service):
    agent = chat_service.create_agent(make_principal(service=True), slug="support", name="Support bot")
    session = create()
    for temperature in (0, 2):
        variables = {"data": {"botId": agent.id, "sessionId": session["id"], "temperature": temperature}}
        data(gql(DOCS["updateTodoChatSessionCustomBotConfig"], variables))


# ------------------------------------------------------------------------------- createTodoChatMessage

def test_given_an_active_session_when_posting_then_the_message_is_returned_and_activity_moves(dynamodb,
                                                                                             clock_offset):
    session = create()
    clock_offset.advance(30)
    message = data(post(session["id"], "Hello"))["createTodoChatMessage"]
    assert message["message"] == "Hello" and message["isBotReply"] is False
    assert message["sentBy"] == {"id": "alice", "firstName": "Alice"}
    after = data(details(session["id"]))["getOneTodoChatSession"]
    assert after["expiresAt"] > session["expiresAt"]  # a message counts as activity


def test_given_a_user_when_posting_a_bot_reply_then_forbidden_and_nothing_written(dynamodb):
    session = create()
    assert codes(post(session["id"], "I am a bot", bot=True)) == ["FORBIDDEN"]
    assert data(details(session["id"]))["getOneTodoChatSession"]["messages"] == []


def test_given_a_service_principal_when_posting_a_bot_reply_to_a_users_session_then_accepted(dynamodb):
    session = create()
    data(post(session["id"], "question"))
    service = claims_for("support-bot", name="Bot", scope=SERVICE)
    reply = data(post(session["id"], "answer", bot=True, claims=service))["createTodoChatMessage"]
    assert reply["isBotReply"] is True and reply["sentBy"] is None
    messages = data(details(session["id"]))["getOneTodoChatSession"]["messages"]
    assert [(m["message"], m["isBotReply"]) for m in messages] == [("question", False), ("answer", True)]
    assert messages[1]["sentBy"] is None


@pytest.mark.parametrize("message", ["", "   ", "x" * (32 * 1024 + 1)])
def test_given_empty_or_oversized_content_when_posting_then_bad_user_input(dynamodb, message):
    session = create()
    assert codes(post(session["id"], message)) == ["BAD_USER_INPUT"]


def test_given_an_unknown_session_when_posting_then_not_found(dynamodb):
    assert codes(post(67890)) == ["NOT_FOUND"]


def test_given_an_expired_session_when_posting_then_session_expired_and_still_readable(dynamodb, clock_offset):
    session = create(idleTimeoutSeconds=60)
    data(post(session["id"], "before expiry"))
    clock_offset.advance(120)
    result = post(session["id"], "too late")
    assert codes(result) == ["SESSION_EXPIRED"] and result["data"] is None
    view = data(details(session["id"]))["getOneTodoChatSession"]
    assert view["status"] == "EXPIRED"
    assert [m["message"] for m in view["messages"]] == ["before expiry"]
    listed = data(gql(DOCS["getTodoChatSessions"], {"todoId": TODO}))["getTodoChatSessions"]
    assert [s["id"] for s in listed["sessions"]] == [session["id"]]


def test_given_activity_before_the_timeout_when_posting_then_the_session_stays_active(dynamodb, clock_offset):
    session = create(idleTimeoutSeconds=60)
    for _ in range(3):
        clock_offset.advance(45)
        data(post(session["id"], "still here"))
    assert data(details(session["id"]))["getOneTodoChatSession"]["status"] == "ACTIVE"


# ------------------------------------------------------------------------------- closeTodoChatSession

def test_given_a_closed_session_when_posting_then_session_closed_and_still_readable(dynamodb):
    session = create()
    data(post(session["id"], "kept"))
    closed = data(gql(DOCS["closeTodoChatSession"], {"id": session["id"]}))["closeTodoChatSession"]
    assert closed["status"] == "CLOSED"
    assert codes(post(session["id"], "refused")) == ["SESSION_CLOSED"]
    view = data(details(session["id"]))["getOneTodoChatSession"]
    assert view["status"] == "CLOSED" and [m["message"] for m in view["messages"]] == ["kept"]


def test_given_a_closed_session_when_closing_again_then_still_closed(dynamodb):
    session = create()
    data(gql(DOCS["closeTodoChatSession"], {"id": session["id"]}))
    again = data(gql(DOCS["closeTodoChatSession"], {"id": session["id"]}))["closeTodoChatSession"]
    assert again["status"] == "CLOSED"


def test_given_an_expired_session_when_closing_then_closed_and_posting_says_closed(dynamodb, clock_offset):
    session = create(idleTimeoutSeconds=60)
    clock_offset.advance(90)
    assert data(gql(DOCS["closeTodoChatSession"], {"id": session["id"]}))["closeTodoChatSession"]["status"] == "CLOSED"
    assert codes(post(session["id"])) == ["SESSION_CLOSED"]


def test_given_an_unknown_session_when_closing_then_not_found(dynamodb):
    assert codes(gql(DOCS["closeTodoChatSession"], {"id": 67890})) == ["NOT_FOUND"]


# ------------------------------------------------------------------------------- deleting

def test_given_a_session_when_deleting_with_the_guides_mutation_then_gone_from_every_read(dynamodb):
    session = create()
    data(post(session["id"], "bye"))
    deleted = data(gql(DOCS["deleteTodoChatSession"], {"id": session["id"]}))["deleteTodoChatSession"]
    assert deleted == {"id": session["id"]}
    assert codes(details(session["id"])) == ["NOT_FOUND"]
    assert data(gql(DOCS["getTodoChatSessions"], {"todoId": TODO}))["getTodoChatSessions"]["totalCount"] == 0
    assert codes(gql(DOCS["deleteTodoChatSession"], {"id": session["id"]})) == ["NOT_FOUND"]


def test_given_a_deleted_session_when_asking_for_its_messages_field_then_empty_not_an_error(dynamodb):
    session = create()
    doc = "mutation($id: Float!) { deleteTodoChatSession(id: $id) { id title messages { id } } }"
    assert data(gql(doc, {"id": session["id"]}))["deleteTodoChatSession"] == {
        "id": session["id"], "title": "Customer Support", "messages": []}


def test_given_mine_unknown_and_repeated_ids_when_deleting_many_then_count_of_mine_deleted(dynamodb):
    mine = [create(title=f"s{i}")["id"] for i in range(3)]
    keep = create(title="keep")["id"]
    result = data(gql(DOCS["deleteManyTodoChatSession"], {"ids": [int(i) for i in mine] + [67890]}))
    assert result == {"deleteManyTodoChatSession": 3}
    listed = data(gql(DOCS["getTodoChatSessions"], {"todoId": TODO}))["getTodoChatSessions"]
    assert [s["id"] for s in listed["sessions"]] == [keep]
    assert data(gql(DOCS["deleteManyTodoChatSession"], {"ids": [int(i) for i in mine]})) == {
        "deleteManyTodoChatSession": 0}


def test_given_an_empty_list_when_deleting_many_then_zero(dynamodb):
    assert data(gql(DOCS["deleteManyTodoChatSession"], {"ids": []})) == {"deleteManyTodoChatSession": 0}


@pytest.mark.parametrize("ids", [[0], [-5], [1, 2**31 - 1, -1]])
def test_given_ids_out_of_range_when_deleting_many_then_bad_user_input(dynamodb, ids):
    assert codes(gql(DOCS["deleteManyTodoChatSession"], {"ids": ids})) == ["BAD_USER_INPUT"]


def test_given_more_than_100_ids_when_deleting_many_then_bad_user_input_and_nothing_deleted(dynamodb):
    session = create()
    ids = [int(session["id"])] + list(range(1, 101))
    assert codes(gql(DOCS["deleteManyTodoChatSession"], {"ids": ids})) == ["BAD_USER_INPUT"]
    assert data(details(session["id"]))


@pytest.mark.parametrize("raw", ["[99999999999]", "[2147483648]", "[1.5]", "[\"12\"]", "null", "[null]"])
def test_given_ids_that_are_not_graphql_ints_when_deleting_many_then_a_code_not_a_500(dynamodb, raw):
    from chatkeep.graphql.server import handle

    body = f'{{"query": {json.dumps(DOCS["deleteManyTodoChatSession"])}, "variables": {{"ids": {raw}}}}}'
    response = handle(http_event("POST", "/graphql", raw_body=body, claims=claims_for()))
    assert response["statusCode"] == 200
    result = json.loads(response["body"])
    assert codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["message"] != "Internal server error"


def test_given_an_int_literal_overflow_in_the_document_then_validation_failed(dynamodb):
    result = gql("mutation { deleteManyTodoChatSession(ids: [99999999999]) }", status=400)
    assert codes(result) == ["GRAPHQL_VALIDATION_FAILED"]


# ------------------------------------------------------------------------------- starter session, agents

def test_given_a_registered_agent_when_getting_the_starter_by_slug_then_one_session_with_that_bot(
        dynamodb, chat_service):
    agent = chat_service.create_agent(make_principal(service=True), slug="my-agent-slug", name="My agent")
    first = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": "my-agent-slug"}))
    second = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": "my-agent-slug"}))
    starter = first["getOrCreateUserStartTodoChatSession"]
    assert starter == second["getOrCreateUserStartTodoChatSession"]
    assert starter["defaultBotId"] == agent.id and starter["title"] == "New Chat"
    # It lives in the user's home todo, like any session.
    listed = data(gql(DOCS["getTodoChatSessions"], {"todoId": starter["todoId"]}))["getTodoChatSessions"]
    assert [s["id"] for s in listed["sessions"]] == [starter["id"]]


STARTER_WITH_MESSAGES = "{getOrCreateUserStartTodoChatSession{id messages{id message}}}"


def test_given_a_starter_with_messages_when_getting_it_with_its_messages_then_they_are_there(dynamodb):
    # Issue 18: the messages of an existing starter came back as [] (getOneTodoChatSession showed them).
    starter = data(gql(STARTER_WITH_MESSAGES))["getOrCreateUserStartTodoChatSession"]
    assert starter["messages"] == []  # new: nothing yet
    for text in ("first", "second"):
        data(post(starter["id"], text))
    again = data(gql(STARTER_WITH_MESSAGES))["getOrCreateUserStartTodoChatSession"]
    assert again["id"] == starter["id"] and [m["message"] for m in again["messages"]] == ["first", "second"]
    shown = data(details(starter["id"]))["getOneTodoChatSession"]["messages"]
    assert [m["id"] for m in shown] == [m["id"] for m in again["messages"]]


def test_given_a_default_agent_when_getting_the_starter_without_slug_then_the_default_agent(dynamodb, chat_service):
    default = chat_service.create_agent(make_principal(service=True), slug="general", name="General")
    chat_service.create_agent(make_principal(service=True), slug="other", name="Other")
    starter = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": None}))
    assert starter["getOrCreateUserStartTodoChatSession"]["defaultBotId"] == default.id
    by_other = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": "other"}))
    assert by_other["getOrCreateUserStartTodoChatSession"]["id"] != starter["getOrCreateUserStartTodoChatSession"]["id"]


@pytest.mark.parametrize("first, then", [(None, "general"), ("general", None)], ids=["null-first", "slug-first"])
def test_given_a_default_agent_when_asking_by_null_and_by_its_slug_then_one_starter(dynamodb, chat_service,
                                                                                      first, then):
    """`botSlug: null` and the default agent's own slug name the same agent, so they are one starter session."""
    default = chat_service.create_agent(make_principal(service=True), slug="general", name="General")
    starter = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": first}))
    again = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": then}))

    assert again == starter
    assert starter["getOrCreateUserStartTodoChatSession"]["defaultBotId"] == default.id
    pointers = dynamodb.query(TableName="ChatTable", KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
                              ExpressionAttributeValues={":pk": {"S": "W#ws1#U#alice"}, ":s": {"S": "STARTER#"}})
    assert pointers["Count"] == 1


def test_given_no_agents_when_getting_the_starter_without_slug_then_a_session_without_bot(dynamodb):
    starter = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {}))["getOrCreateUserStartTodoChatSession"]
    assert starter["defaultBotId"] is None


@pytest.mark.parametrize("slug", ["no-such-agent", "Bad Slug!!"])
def test_given_an_unknown_slug_when_getting_the_starter_then_not_found_and_nothing_created(dynamodb, slug):
    result = gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": slug})
    assert codes(result) == ["NOT_FOUND"] and result["data"] is None
    assert dynamodb.scan(TableName="ChatTable", Select="COUNT")["Count"] == 0


def test_given_another_workspaces_agent_when_getting_the_starter_by_its_slug_then_not_found(dynamodb, chat_service):
    chat_service.create_agent(make_principal(workspace="ws2", service=True), slug="theirs", name="Theirs")
    assert codes(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": "theirs"})) == ["NOT_FOUND"]


def test_given_a_closed_starter_when_getting_it_again_then_a_fresh_active_one(dynamodb, chat_service):
    chat_service.create_agent(make_principal(service=True), slug="helper", name="Helper")
    first = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": "helper"}))
    first_id = first["getOrCreateUserStartTodoChatSession"]["id"]
    data(gql(DOCS["closeTodoChatSession"], {"id": first_id}))
    again = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": "helper"}))
    assert again["getOrCreateUserStartTodoChatSession"]["id"] != first_id
    assert data(post(again["getOrCreateUserStartTodoChatSession"]["id"], "works"))


def test_given_users_when_each_gets_a_starter_then_each_has_their_own(dynamodb, chat_service):
    chat_service.create_agent(make_principal(service=True), slug="helper", name="Helper")
    alice = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": "helper"}))
    bob = data(gql(DOCS["getOrCreateUserStartTodoChatSession"], {"botSlug": "helper"},
                   claims=claims_for("bob", name="Bob")))
    assert alice["getOrCreateUserStartTodoChatSession"]["id"] != bob["getOrCreateUserStartTodoChatSession"]["id"]
    assert codes(details(alice["getOrCreateUserStartTodoChatSession"]["id"], claims=claims_for("bob"))) == [
        "NOT_FOUND"]


# ------------------------------------------------------------------------------- search

def test_given_sessions_when_searching_with_an_empty_query_then_the_todos_sessions_by_recency(dynamodb):
    a, b = create(title="alpha"), create(title="beta")
    for query in (None, "", "   "):
        found = data(gql(DOCS["getSearchTodoChatSessions"], {"todoId": TODO, "searchQuery": query}))
        assert [s["id"] for s in found["getSearchTodoChatSessions"]] == [b["id"], a["id"]]


def test_given_too_many_words_when_searching_then_bad_user_input(dynamodb):
    query = " ".join(f"w{i}" for i in range(30))
    assert codes(gql(DOCS["getSearchTodoChatSessions"], {"todoId": TODO, "searchQuery": query})) == [
        "BAD_USER_INPUT"]


def test_given_an_unused_todo_when_searching_with_words_then_empty(dynamodb):
    found = data(gql(DOCS["getSearchTodoChatSessions"], {"todoId": 4242, "searchQuery": "billing"}))
    assert found == {"getSearchTodoChatSessions": []}


# ------------------------------------------------------------------------------- identity

def test_given_no_claims_when_calling_then_401_unauthenticated(dynamodb):
    response = handle_event({"query": DOCS["getTodoChatSessions"], "variables": {"todoId": TODO}}, None)
    assert response["statusCode"] == 401
    assert codes(json.loads(response["body"])) == ["UNAUTHENTICATED"]


def test_given_a_mismatched_workspace_header_when_calling_then_403_forbidden(dynamodb):
    from chatkeep.graphql.server import handle

    event = http_event("POST", "/graphql", body={"query": "{ __typename }"}, claims=claims_for(),
                       headers={"X-Workspace-Id": "ws2"})
    response = handle(event)
    assert response["statusCode"] == 403 and codes(json.loads(response["body"])) == ["FORBIDDEN"]


def test_given_ids_then_they_are_whole_numbers_below_2_31(dynamodb):
    ids = {create(title=f"s{i}")["id"] for i in range(20)}
    assert len(ids) == 20 and all(i == math.floor(i) and 0 < i < 2**31 for i in ids)
