"""Issue 18, in process (moto): answers that must not tell a caller what another user's objects hold, and the
registration that keeps a user's container from being claimed first by someone else of the workspace."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.support import SERVICE_SCOPE, call_rest, claims, gql, gql_code, rest_event

ALICE, BOB = claims("alice", "ws1", name="Alice"), claims("bob", "ws1", name="Bob")
OPS = claims("ops", "ws1", name=None, scope=SERVICE_SCOPE)


def rest(method: str, path: str, who: dict[str, str], body: Any = None, query: dict[str, str] | None = None) -> Any:
    return call_rest(rest_event(method, path, claims_=who, body=body, query=query))


def _session_with_message(who: dict[str, str]) -> tuple[str, str]:
    channel = rest("POST", "/v1/channels", who, {})[1]["id"]
    reply = rest("POST", f"/v1/channels/{channel}/messages", who, {"content": "hello"})[1]
    return reply["session"]["id"], reply["message"]["id"]


def test_given_another_users_session_when_paging_its_history_from_any_message_then_one_and_the_same_404(
        dynamodb: Any) -> None:
    alices_session, alices_message = _session_with_message(ALICE)
    bobs_session, bobs_message = _session_with_message(BOB)
    answers = set()
    for session in (alices_session, "ses_c1s"):  # another user's session, a session nobody has
        for name in ("before", "after"):
            for message in (alices_message, bobs_message, "msg_c1s"):
                status, _, raw = rest("GET", f"/v1/sessions/{session}/messages", BOB, query={name: message})
                answers.add((status, raw))
    # Before: the pair (Alice's session, Alice's message) answered "session not found", every other pair
    # "'before': message ... not found in this session", which told Bob the message was in that session.
    assert answers == {(404, '{"error":{"code":"not_found","message":"session not found"}}')}
    status, body, _ = rest("GET", f"/v1/sessions/{bobs_session}/messages", BOB, query={"before": alices_message})
    assert status == 404 and body["error"]["message"].startswith("'before': message msg_"), body


def test_given_a_service_principal_when_it_creates_a_channel_for_a_user_then_only_that_user_has_it(
        dynamodb: Any) -> None:
    status, channel, _ = rest("POST", "/v1/channels", OPS, {"name": "Alice's todo", "owner": "alice"})
    assert status == 201, channel
    assert rest("GET", f"/v1/channels/{channel['id']}", ALICE)[0] == 200
    assert rest("GET", f"/v1/channels/{channel['id']}", BOB)[0] == 404
    from chatkeep import ids

    todo = ids.decode(ids.Kind.CHANNEL, channel["id"])
    create = "mutation($t: Float!){createTodoChatSession(data:{todoId: $t}){id todoId}}"
    _, body, _ = gql(create, {"t": todo}, claims_=BOB)  # the id is registered: Bob cannot claim it first
    assert gql_code(body) == "NOT_FOUND", body
    _, body, _ = gql(create, {"t": todo}, claims_=ALICE)
    assert body["data"]["createTodoChatSession"]["todoId"] == todo, body
    _, body, _ = gql("query($t: Float!){getTodoChatSessions(todoId: $t){totalCount}}", {"t": todo}, claims_=ALICE)
    assert body["data"]["getTodoChatSessions"]["totalCount"] == 1


@pytest.mark.parametrize(("who", "owner", "status", "code"), [
    (ALICE, "bob", 403, "forbidden"),  # a user cannot make a channel for someone else
    (ALICE, "alice", 403, "forbidden"),
    (OPS, "bad#owner", 422, "validation_error"),
    (OPS, "alice\n", 422, "validation_error"),
    (OPS, "*", 422, "validation_error"),  # shared is what a service principal gets without an owner
    (OPS, "x" * 129, 422, "validation_error"),
])
def test_given_an_owner_the_caller_may_not_give_when_creating_a_channel_then_refused_and_nothing_written(
        dynamodb: Any, who: dict[str, str], owner: str, status: int, code: str) -> None:
    got, body, _ = rest("POST", "/v1/channels", who, {"owner": owner})
    assert (got, body["error"]["code"]) == (status, code), body
    assert dynamodb.scan(TableName="ChatTable", Select="COUNT")["Count"] == 0
