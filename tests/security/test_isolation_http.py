"""Tenant isolation over HTTP (`chatkeep dev`: the JWT authorizer, routing and handlers as deployed).

Every GraphQL operation and every REST route of template.yaml is called with: no token, an expired token,
a token for the wrong audience, a token signed with another key, a token with no workspace_id, an
X-Workspace-Id header that does not match, another user of the same workspace, and a service principal of
another workspace. Token problems answer 401/403; other tenants get 404 / NOT_FOUND (or their own empty
view); the owner's data is unchanged (every table scanned through the runtime's DynamoDB endpoint)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.security.support import SERVICE_SCOPE, assert_no_internals, diff, snapshot
from tests.security.test_isolation_matrix import OPS, SCHEMA_OPERATIONS

pytestmark = pytest.mark.e2e

SECRET = "canary-http-secret-3c1d"


@pytest.fixture(scope="module")
def world(local_api: Any) -> dict[str, Any]:
    ws = f"iso-{uuid.uuid4().hex[:8]}"
    owner = local_api.token("alice", ws, name="Alice")
    ops = local_api.token("ops", ws, scope=SERVICE_SCOPE)
    # The system prompt is a secret of the app's: only service principals read it (issue 18).
    r = local_api.request("POST", "/v1/agents", token=ops,
                          json={"slug": "helper", "name": "Helper", "system_prompt": f"prompt {SECRET}"})
    assert r.status_code == 201, r.text
    agent = r.json()["id"]
    r = local_api.request("POST", "/v1/channels", token=owner, json={"name": f"channel {SECRET}"})
    assert r.status_code == 201, r.text
    channel = r.json()["id"]
    r = local_api.request("POST", f"/v1/channels/{channel}/sessions", token=owner,
                          json={"title": f"title {SECRET}", "metadata": {"k": SECRET}})
    assert r.status_code == 201, r.text
    session = r.json()["id"]
    r = local_api.request("POST", f"/v1/sessions/{session}/messages", token=owner, json={"content": f"hi {SECRET}"})
    assert r.status_code == 201, r.text
    message = r.json()["id"]
    local_api.drain()
    import boto3

    endpoint = local_api.health()["dynamodb"]
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    from chatkeep import ids

    return {"ws": ws, "owner": owner, "agent": agent, "channel": channel, "session": session, "message": message,
            "client": client, "sid": ids.decode(ids.Kind.SESSION, session),
            "cid": ids.decode(ids.Kind.CHANNEL, channel), "aid": ids.decode(ids.Kind.AGENT, agent)}


def _tokens(local_api: Any, w: dict[str, Any]) -> dict[str, tuple[str | None, dict[str, str], int]]:
    """name -> (token, extra headers, expected status) for the token-level problems."""
    ws = w["ws"]
    return {
        "no_token": (None, {}, 401),
        "expired": (local_api.token("alice", ws, now=time.time() - 7200, ttl=60), {}, 401),
        "wrong_audience": (local_api.token("alice", ws, audience="someone-else"), {}, 401),
        "wrong_issuer": (local_api.token("alice", ws, issuer="https://evil.example"), {}, 401),
        "bad_signature": (local_api.token("alice", ws, secret="not-the-dev-secret"), {}, 401),
        "no_workspace_claim": (local_api.token("alice", None), {}, 401),
        # Claims match in full: a trailing newline is not the same principal (issue 18).
        "sub_with_newline": (local_api.token("alice\n", ws), {}, 401),
        "workspace_with_newline": (local_api.token("alice", f"{ws}\n"), {}, 401),
        "x_workspace_id_mismatch": (w["owner"], {"X-Workspace-Id": f"{ws}-other"}, 403),
    }


def _rest_routes(w: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    c, s, m, a = w["channel"], w["session"], w["message"], w["agent"]
    return [
        ("POST", "/v1/channels", {"name": "x"}),
        ("GET", f"/v1/channels/{c}", None),
        ("POST", f"/v1/channels/{c}/sessions", {"title": "x"}),
        ("GET", f"/v1/channels/{c}/sessions", None),
        ("GET", f"/v1/channels/{c}/sessions/search?q=canary", None),
        ("POST", f"/v1/channels/{c}/messages", {"content": "intruder"}),
        ("GET", f"/v1/sessions/{s}", None),
        ("PATCH", f"/v1/sessions/{s}", {"title": "intruder"}),
        ("POST", f"/v1/sessions/{s}/close", None),
        ("DELETE", f"/v1/sessions/{s}", None),
        ("GET", f"/v1/sessions/{s}/messages?after={m}", None),
        ("POST", f"/v1/sessions/{s}/messages", {"content": "intruder"}),
        ("POST", "/v1/agents", {"slug": "intruder", "name": "x"}),
        ("GET", "/v1/agents", None),
        ("GET", f"/v1/agents/{a}", None),
        ("POST", f"/v1/sessions/{s}/turn/cancel", None),
        ("POST", f"/v1/sessions/{s}/turn", None),
        ("GET", "/v1/usage", None),
    ]


def test_rest_routes_cover_the_template(local_api: Any, world: dict[str, Any]) -> None:
    declared = {r for r in local_api.health()["routes"] if r.split()[1].startswith("/v1/")}
    ours = {f"{m} {p.split('?')[0]}" for m, p, _ in _rest_routes(world)}
    normalised = {r.replace("{channel_id}", world["channel"]).replace("{session_id}", world["session"])
                  .replace("{agent_id}", world["agent"]) for r in declared}
    assert normalised == ours, "a new REST route needs a row in the HTTP isolation matrix"


def _gql_variables(w: dict[str, Any]) -> Any:
    from tests.security.test_isolation_matrix import World

    return World(client=None, todo=w["cid"], session=w["sid"], others=[], starter=w["sid"], agent=w["aid"],
                 message=0)


def test_token_problems_on_every_route_and_operation(local_api: Any, world: dict[str, Any]) -> None:
    w = world
    before = snapshot(w["client"])
    gw = _gql_variables(w)
    for name, (token, headers, expected) in _tokens(local_api, w).items():
        for method, path, body in _rest_routes(w):
            r = local_api.request(method, path, token=token, json=body, headers=headers)
            assert r.status_code == expected, (name, method, path, r.status_code, r.text[:200])
            assert_no_internals(r.text, SECRET)
        for op in OPS:
            r = local_api.request("POST", "/graphql", token=token, headers=headers,
                                  json={"query": op.query, "variables": op.variables(gw)})
            assert r.status_code == expected, (name, op.name, r.status_code, r.text[:200])
            assert_no_internals(r.text, SECRET)
    assert {op.name.split("(")[0] for op in OPS} == SCHEMA_OPERATIONS
    assert diff(before, snapshot(w["client"])) == {"changed": [], "removed": [], "added": []}


def test_other_tenants_get_not_found_and_change_nothing(local_api: Any, world: dict[str, Any]) -> None:
    w = world
    attackers = {
        "same_workspace_user": local_api.token("bob", w["ws"], name="Bob"),
        "other_workspace_service": local_api.token("svc", f"{w['ws']}-b", scope=SERVICE_SCOPE),
        # Scopes are space-separated tokens compared exactly: none of these is the service scope (issue 18).
        "bracketed_scope": local_api.token("carol", w["ws"], scope=f"[{SERVICE_SCOPE}]"),
        "comma_scope": local_api.token("dave", w["ws"], scope=f"openid,{SERVICE_SCOPE}"),
        "tab_scope": local_api.token("erin", w["ws"], scope=f"openid\t{SERVICE_SCOPE}"),
    }
    same_workspace = {"same_workspace_user", "bracketed_scope", "comma_scope", "tab_scope"}
    from chatkeep.repository import keys

    victim = (keys.container_pk(w["ws"], w["cid"]), keys.session_pk(w["ws"], w["sid"]))
    for name, token in attackers.items():
        before = snapshot(w["client"])
        for method, path, body in _rest_routes(w):
            r = local_api.request(method, path, token=token, json=body)
            assert_no_internals(r.text, SECRET)
            route = f"{method} {path}"
            if method == "POST" and path == "/v1/channels":
                assert r.status_code == 201, (name, route, r.status_code, r.text[:200])  # their own channel
            elif method == "POST" and path == "/v1/agents":
                # Agents need the service scope (the other workspace's service principal has it, for its own).
                expected = 201 if name == "other_workspace_service" else 403
                assert r.status_code == expected, (name, route, r.status_code, r.text[:200])
            elif path == "/v1/agents":
                assert r.status_code == 200 and "helper" not in r.text or name in same_workspace, r.text
            elif path == "/v1/usage":
                # Workspace usage is for service principals, of their own workspace only.
                expected = 403 if name in same_workspace else 200
                assert r.status_code == expected and (expected == 403 or r.json() == {"data": []}), r.text[:200]
            elif path.startswith("/v1/agents/"):
                # Agents are the workspace's: same workspace reads it (not its prompt), another does not find it.
                expected = 200 if name in same_workspace else 404
                assert r.status_code == expected, (name, route, r.status_code, r.text[:200])
            else:
                assert r.status_code == 404, (name, route, r.status_code, r.text[:200])
                assert r.json()["error"]["code"] == "not_found"
        after = snapshot(w["client"])
        changes = diff(before, after)
        assert changes["changed"] == [] and changes["removed"] == [], (name, changes)
        assert not [k for k in changes["added"] if any(v in k for v in victim)], (name, changes)
    r = local_api.request("GET", f"/v1/sessions/{w['session']}", token=w["owner"])
    assert r.status_code == 200 and r.json()["title"] == f"title {SECRET}"


def test_a_history_page_of_another_users_session_answers_the_same_whatever_message_it_names(
        local_api: Any, world: dict[str, Any]) -> None:
    """Issue 18: `?before=<a message in it>` answered "session not found" and every other message "'before':
    message ... not found in this session", which told which messages another user's session holds."""
    w = world
    bob = local_api.token("bob", w["ws"], name="Bob")
    answers = {(r.status_code, r.text) for name in ("before", "after") for message in (w["message"], "msg_c1s")
               for r in [local_api.request("GET", f"/v1/sessions/{w['session']}/messages?{name}={message}",
                                           token=bob)]}
    assert answers == {(404, '{"error":{"code":"not_found","message":"session not found"}}')}, answers


def test_a_channel_a_service_principal_registers_for_a_user_is_that_users_alone(
        local_api: Any, world: dict[str, Any]) -> None:
    w = world
    ops = local_api.token("ops", w["ws"], scope=SERVICE_SCOPE)
    frank, bob = local_api.token("frank", w["ws"], name="Frank"), local_api.token("bob", w["ws"], name="Bob")
    r = local_api.request("POST", "/v1/channels", token=ops, json={"owner": "frank", "name": "Frank's todo"})
    assert r.status_code == 201, r.text
    from chatkeep import ids

    todo = ids.decode(ids.Kind.CHANNEL, r.json()["id"])
    create = "mutation($t: Float!){createTodoChatSession(data:{todoId: $t}){id}}"
    assert local_api.gql(create, {"t": todo}, token=bob)["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "errors" not in local_api.gql(create, {"t": todo}, token=frank)
    r = local_api.request("POST", "/v1/channels", token=bob, json={"owner": "frank"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
