"""Tenant isolation, in process (moto): every GraphQL operation exercised as the owner, another user of
the same workspace, a service principal of another workspace, claims with no workspace, no claims at all,
and an X-Workspace-Id header that does not match the token. Each answers as DESIGN.md says (NOT_FOUND that
never leaks existence; UNAUTHENTICATED / FORBIDDEN where the token is the problem) and no item of the
victim changes (every table is scanned before and after).

The token-level cases that need the JWT authorizer (no token, expired, wrong audience) run over
`chatkeep dev` in test_isolation_http.py. REST routes: test_isolation_rest.py."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.security.support import (
    SERVICE_SCOPE,
    assert_gql_errors_clean,
    claims,
    diff,
    gql,
    gql_code,
    settle_stream,
    snapshot,
)

VICTIM_TITLE = "Zebrafish quarterly canary"
VICTIM_MESSAGE = "canary-message-7f3e the launch code is swordfish"
VICTIM_META = "canary-meta-91ab"
TODO = 4242

SESSION_FIELDS = "id title todoId status messageCount metadata messages(limit: 5) { id message }"


@dataclass
class World:
    client: Any
    todo: int
    session: int
    others: list[int]
    starter: int
    agent: int
    message: int
    victim_ids: set[int] = field(default_factory=set)


@pytest.fixture
def world(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    """alice (ws1) owns todo TODO with three sessions (titles, metadata, a message) and a starter session;
    ws1 has an agent 'helper'. The stream has been delivered (counts, search index)."""
    from chatkeep import aws
    from chatkeep.settings import get_settings
    from chatkeep.stream import processor
    from chatkeep_local.stream_reader import StreamReader

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    processor.reset()
    from chatkeep.service import default_service

    from tests.conftest import make_principal

    alice = claims("alice", "ws1")
    # Agents have no GraphQL mutation: created through the service layer, as the REST route does.
    agent = default_service().create_agent(make_principal("ops", "ws1", service=True), slug="helper", name="Helper")
    made = []
    for n in range(3):
        status, body, _ = gql(
            "mutation($d: TodoChatSessionInput!){createTodoChatSession(data:$d){id}}",
            {"d": {"todoId": TODO, "title": f"{VICTIM_TITLE} {n}", "metadata": {"k": VICTIM_META}}}, claims_=alice)
        assert status == 200 and "errors" not in body, body
        made.append(int(body["data"]["createTodoChatSession"]["id"]))
    status, body, _ = gql("mutation($d: TodoChatMessageInput!){createTodoChatMessage(data:$d){id}}",
                          {"d": {"sessionId": made[0], "message": VICTIM_MESSAGE}}, claims_=alice)
    assert "errors" not in body, body
    message = int(body["data"]["createTodoChatMessage"]["id"])
    status, body, _ = gql('{getOrCreateUserStartTodoChatSession(botSlug: "helper"){id}}', claims_=alice)
    assert "errors" not in body, body
    starter = int(body["data"]["getOrCreateUserStartTodoChatSession"]["id"])
    settle_stream(StreamReader(get_settings().chat_table_name, dynamodb_client=aws.dynamodb()))
    w = World(aws.dynamodb(), TODO, made[0], made[1:], starter, agent.id, message)
    w.victim_ids = {TODO, *made, starter, message}
    yield w
    processor.reset()


# ---------------------------------------------------------------- the operations


@dataclass(frozen=True)
class Op:
    name: str
    query: str
    variables: Callable[[World], dict[str, Any]]
    creates: bool = False  # may legitimately create the caller's own items


OPS = [
    Op("getTodoChatSessions",
       f"query($t: Float!){{getTodoChatSessions(todoId:$t, limit: 10){{totalCount sessions{{{SESSION_FIELDS}}}}}}}",
       lambda w: {"t": w.todo}),
    Op("getOneTodoChatSession", f"query($s: Float!){{getOneTodoChatSession(sessionId:$s){{{SESSION_FIELDS}}}}}",
       lambda w: {"s": w.session}),
    Op("getOrCreateUserStartTodoChatSession",
       f"query($b: String){{getOrCreateUserStartTodoChatSession(botSlug:$b){{{SESSION_FIELDS}}}}}",
       lambda w: {"b": "helper"}, creates=True),
    Op("getSearchTodoChatSessions",
       f"query($t: Float!, $q: String){{getSearchTodoChatSessions(todoId:$t, searchQuery:$q){{{SESSION_FIELDS}}}}}",
       lambda w: {"t": w.todo, "q": "zebrafish"}),
    Op("createTodoChatSession",
       "mutation($d: TodoChatSessionInput!){createTodoChatSession(data:$d){id todoId title}}",
       lambda w: {"d": {"todoId": w.todo, "title": "intruder"}}, creates=True),
    Op("updateTodoChatSession",
       "mutation($i: Float!, $d: TodoChatSessionInput!){updateTodoChatSession(id:$i, data:$d){id title}}",
       lambda w: {"i": w.session, "d": {"title": "renamed by intruder", "metadata": {"x": 1}}}),
    Op("updateTodoChatSessionCustomBotConfig",
       "mutation($d: BotCustomConfigInput!){updateTodoChatSessionCustomBotConfig(data:$d){id botConfig{model}}}",
       lambda w: {"d": {"sessionId": w.session, "botId": w.agent, "model": "intruder", "temperature": 1}}),
    Op("deleteTodoChatSession", "mutation($i: Float!){deleteTodoChatSession(id:$i){id}}",
       lambda w: {"i": w.session}),
    Op("deleteManyTodoChatSession", "mutation($i: [Int!]!){deleteManyTodoChatSession(ids:$i)}",
       lambda w: {"i": [w.session, *w.others, w.starter]}),
    Op("createTodoChatMessage",
       "mutation($d: TodoChatMessageInput!){createTodoChatMessage(data:$d){id message}}",
       lambda w: {"d": {"sessionId": w.session, "message": "intruder message"}}),
    Op("createTodoChatMessage(bot)",
       "mutation($d: TodoChatMessageInput!){createTodoChatMessage(data:$d){id message}}",
       lambda w: {"d": {"sessionId": w.session, "message": "intruder bot", "isBotReply": True}}),
    Op("closeTodoChatSession", "mutation($i: Float!){closeTodoChatSession(id:$i){id status}}",
       lambda w: {"i": w.session}),
    Op("cancelTodoChatTurn", "mutation($s: Float!){cancelTodoChatTurn(sessionId:$s){id turn{status}}}",
       lambda w: {"s": w.session}),
    Op("retryTodoChatTurn", "mutation($s: Float!){retryTodoChatTurn(sessionId:$s){id turn{status}}}",
       lambda w: {"s": w.session}),
]

SCHEMA_OPERATIONS = {
    "getTodoChatSessions", "getOneTodoChatSession", "getOrCreateUserStartTodoChatSession",
    "getSearchTodoChatSessions", "createTodoChatSession", "updateTodoChatSession",
    "updateTodoChatSessionCustomBotConfig", "deleteTodoChatSession", "deleteManyTodoChatSession",
    "createTodoChatMessage", "closeTodoChatSession", "cancelTodoChatTurn", "retryTodoChatTurn",
}


def test_matrix_covers_every_operation_of_the_schema() -> None:
    from chatkeep.graphql.server import schema

    s = schema()
    fields = set(s.query_type.fields) | set(s.mutation_type.fields)
    assert fields == SCHEMA_OPERATIONS, "a new operation needs a row in the isolation matrix"
    assert {op.name.split("(")[0] for op in OPS} == SCHEMA_OPERATIONS


# ---------------------------------------------------------------- the actors

ATTACKERS: dict[str, dict[str, Any]] = {
    "same_workspace_user": {"claims": claims("bob", "ws1", name="Bob")},
    "other_workspace_same_sub": {"claims": claims("alice", "ws2")},
    "other_workspace_service": {"claims": claims("svc", "ws2", name=None, scope=SERVICE_SCOPE)},
}
TOKEN_PROBLEMS: dict[str, dict[str, Any]] = {
    "no_claims": {"claims": None, "status": 401, "code": "UNAUTHENTICATED"},
    "no_workspace_claim": {"claims": claims("alice", None), "status": 401, "code": "UNAUTHENTICATED"},
    "workspace_with_hash": {"claims": claims("alice", "ws1#S#0000004242"), "status": 401,
                            "code": "UNAUTHENTICATED"},
    "x_workspace_id_mismatch": {"claims": claims("alice", "ws1"), "headers": {"X-Workspace-Id": "ws2"},
                                "status": 403, "code": "FORBIDDEN"},
}


def _victim_partitions(w: World) -> tuple[str, ...]:
    from chatkeep.repository import keys

    sessions = [w.session, *w.others, w.starter]
    return (keys.container_pk("ws1", w.todo), keys.user_pk("ws1", "alice"),
            *(keys.session_pk("ws1", s) for s in sessions))


def _expect_attacker(op: Op, actor: str, status: int, body: dict[str, Any], w: World) -> None:
    data = body.get("data")
    field_ = op.name.split("(")[0]
    code = gql_code(body)
    assert status == 200, (op.name, actor, status, body)
    if field_ == "deleteManyTodoChatSession":
        assert data == {field_: 0}, (op.name, actor, body)
    elif field_ == "getOrCreateUserStartTodoChatSession":
        if actor == "same_workspace_user":  # the agent is the workspace's: bob gets his own starter
            got = data[field_]
            assert int(got["id"]) not in w.victim_ids and got["messages"] == [], body
        else:  # no agent 'helper' in ws2
            assert code == "NOT_FOUND" and data is None, (op.name, actor, body)
    elif field_ == "createTodoChatSession" and actor != "same_workspace_user":
        # The number is unused in ws2: the caller claims its own todo there; nothing of ws1 is touched.
        assert "errors" not in body and data[field_]["title"] == "intruder", body
        assert int(data[field_]["id"]) not in w.victim_ids
    elif field_ in ("getTodoChatSessions", "getSearchTodoChatSessions") and actor != "same_workspace_user":
        # Another workspace: the number names nothing there; it reads as an unused todo (empty).
        empty = {"totalCount": 0, "sessions": []} if field_ == "getTodoChatSessions" else []
        assert "errors" not in body and data == {field_: empty}, (op.name, actor, body)
    elif field_ == "createTodoChatMessage" and "bot" in op.name and actor != "other_workspace_service":
        # Refused for who the caller is (a user never posts bot replies), whatever the session: no leak.
        assert code == "FORBIDDEN" and data is None, (op.name, actor, body)
    else:
        assert code == "NOT_FOUND" and data in (None, {field_: None}), (op.name, actor, body)


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_operation_isolation(world: World, op: Op) -> None:
    w = world
    variables = op.variables(w)
    victim_text = (VICTIM_TITLE, VICTIM_MESSAGE, VICTIM_META)
    before = snapshot(w.client)
    for actor, spec in TOKEN_PROBLEMS.items():
        status, body, raw = gql(op.query, variables, claims_=spec["claims"], headers=spec.get("headers"))
        assert (status, gql_code(body)) == (spec["status"], spec["code"]), (op.name, actor, body)
        assert "data" not in body or body["data"] is None, (op.name, actor, body)
        assert_gql_errors_clean(body, raw)
        assert not any(t in raw for t in victim_text)
        after = snapshot(w.client)
        assert diff(before, after) == {"changed": [], "removed": [], "added": []}, (op.name, actor)
        before = after

    for actor, spec in ATTACKERS.items():
        status, body, raw = gql(op.query, variables, claims_=spec["claims"])
        _expect_attacker(op, actor, status, body, w)
        assert_gql_errors_clean(body, raw)
        for text in victim_text:
            assert text not in raw, (op.name, actor, "leaked", raw[:300])
        after = snapshot(w.client)
        changes = diff(before, after)
        before = after
        assert changes["removed"] == [], (op.name, actor, changes)
        if op.creates:  # in the caller's own todo: added there, and its container records the session's shard
            victim = _victim_partitions(w)
            touched = changes["added"] + changes["changed"]
            assert not [k for k in touched if any(p in k for p in victim)], (op.name, actor, changes)
        else:
            assert changes["added"] == [] and changes["changed"] == [], (op.name, actor, changes)

    # Last: the owner can do it (the refusals above were about the caller, not the request).
    status, body, raw = gql(op.query, variables, claims_=claims("alice", "ws1"))
    field_ = op.name.split("(")[0]
    if "bot" in op.name:
        assert gql_code(body) == "FORBIDDEN", body  # a user never posts bot replies, not even the owner
        status, body, raw = gql(op.query, variables, claims_=claims("ops", "ws1", scope=SERVICE_SCOPE))
    if field_ in ("cancelTodoChatTurn", "retryTodoChatTurn"):
        # The owner reaches the session: its agent is not managed, so there is no turn to cancel or retry (a
        # refusal of the session's state, where every attacker above got NOT_FOUND).
        assert (status, gql_code(body)) == (200, "CONFLICT"), (op.name, body)
        return
    assert status == 200 and "errors" not in body, (op.name, body)
    result = body["data"][field_]
    if field_ == "deleteManyTodoChatSession":
        assert result == 4
    elif field_ == "getTodoChatSessions":
        assert result["totalCount"] == 3 and VICTIM_TITLE in raw
    elif field_ == "getSearchTodoChatSessions":
        assert len(result) == 3
    elif field_ == "getOrCreateUserStartTodoChatSession":
        assert int(result["id"]) == w.starter
    elif field_ == "createTodoChatSession":
        assert result["todoId"] == w.todo


def test_service_principal_of_the_same_workspace_sees_the_workspace(world: World) -> None:
    """The other side of the rule: a ws1 service principal reads alice's todo (shared by the workspace)."""
    status, body, _ = gql("query($t: Float!){getTodoChatSessions(todoId:$t){totalCount}}", {"t": world.todo},
                          claims_=claims("ops", "ws1", scope=SERVICE_SCOPE))
    assert body == {"data": {"getTodoChatSessions": {"totalCount": 3}}}


# ---------------------------------------------------------------- ids are not enumerable

GUESSES = 10_000
PER_CALL = 100


def test_guessing_10000_ids_finds_nothing_of_another_tenant(world: World) -> None:
    """Two attackers (a same-workspace user and another workspace's service principal) each guess 10,000
    random ids (plus the victim's real ids, as if they had leaked) through deleteManyTodoChatSession, 100
    per call, and a sample through getOneTodoChatSession: nothing is found, nothing is deleted."""
    w = world
    before = snapshot(w.client)
    rng = secrets.SystemRandom()
    real = [w.session, *w.others, w.starter]
    for attacker in ("same_workspace_user", "other_workspace_service"):
        who = ATTACKERS[attacker]["claims"]
        guesses = [rng.randint(1, 2**31 - 1) for _ in range(GUESSES)]
        for n, sid in enumerate(real):  # as if the real ids had leaked: still nothing
            guesses[n * 997] = sid
        for start in range(0, GUESSES, PER_CALL):
            status, body, _ = gql("mutation($i: [Int!]!){deleteManyTodoChatSession(ids:$i)}",
                                  {"i": guesses[start:start + PER_CALL]}, claims_=who)
            assert body == {"data": {"deleteManyTodoChatSession": 0}}, (attacker, start, body)
        for sid in [*real, *guesses[:50]]:
            status, body, _ = gql("query($s: Float!){getOneTodoChatSession(sessionId:$s){id title}}",
                                  {"s": sid}, claims_=who)
            assert gql_code(body) == "NOT_FOUND" and body["data"] == {"getOneTodoChatSession": None}, body
    assert diff(before, snapshot(w.client)) == {"changed": [], "removed": [], "added": []}


def test_ids_are_random_not_sequential(dynamodb: Any) -> None:
    """Thirty sessions created back to back: their ids are spread over the 31-bit space, not a sequence."""
    alice = claims("alice", "ws1")
    got = []
    for _ in range(30):
        _, body, _ = gql("mutation{createTodoChatSession(data:{todoId: 7}){id}}", claims_=alice)
        got.append(int(body["data"]["createTodoChatSession"]["id"]))
    assert len(set(got)) == 30
    gaps = sorted(abs(b - a) for a, b in zip(got, got[1:], strict=False))
    assert gaps[len(gaps) // 2] > 1_000_000, "consecutive ids are close: they can be enumerated"
    assert max(got) - min(got) > 2**31 // 4
