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

from tests.security.support import LOCAL_API, SERVICE_SCOPE, assert_no_internals, diff, snapshot
from tests.security.test_isolation_matrix import OPS, SCHEMA_OPERATIONS

local_api = LOCAL_API  # the shared `chatkeep dev` (session fixture)
pytestmark = pytest.mark.e2e

SECRET = "canary-http-secret-3c1d"


@pytest.fixture(scope="module")
def world(local_api: Any) -> dict[str, Any]:
    ws = f"iso-{uuid.uuid4().hex[:8]}"
    owner = local_api.token("alice", ws, name="Alice")
    ops = local_api.token("ops", ws, scope=SERVICE_SCOPE)
    r = local_api.request("POST", "/v1/agents", token=ops, json={"slug": "helper", "name": "Helper"})
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
    }
    from chatkeep.repository import keys

    victim = (keys.container_pk(w["ws"], w["cid"]), keys.session_pk(w["ws"], w["sid"]))
    for name, token in attackers.items():
        before = snapshot(w["client"])
        for method, path, body in _rest_routes(w):
            r = local_api.request(method, path, token=token, json=body)
            assert_no_internals(r.text, SECRET)
            route = f"{method} {path}"
            if method == "POST" and path in ("/v1/channels", "/v1/agents"):
                # Their own channel; agents need the service scope (the other workspace's service may).
                assert r.status_code in (201, 403), (name, route, r.status_code, r.text[:200])
            elif path == "/v1/agents":
                assert r.status_code == 200 and "helper" not in r.text or name == "same_workspace_user", r.text
            elif path == "/v1/usage":
                # Workspace usage is for service principals, of their own workspace only.
                expected = 403 if name == "same_workspace_user" else 200
                assert r.status_code == expected and (expected == 403 or r.json() == {"data": []}), r.text[:200]
            elif path.startswith("/v1/agents/"):
                # Agents are the workspace's: same workspace reads it, another workspace does not find it.
                expected = 200 if name == "same_workspace_user" else 404
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
