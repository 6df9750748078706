"""Privacy in logs: the runtime's logs never contain message contents, metadata values, titles, search queries
or tokens.

The test makes its own evidence, so it holds in any order: it drives every route and operation with
distinctive canary strings (including refused requests: over-limit metadata, inline literals in GraphQL
documents, bad input), drains the stream (whose function logs too), then reads the complete log of the shared
runtime (`local_api.log_path`: the request log and every function's logs). Its canaries and tokens must
appear nowhere, and no bearer token at all may be logged: that part also covers the traffic of every test
that used the runtime before it, in whatever order they ran."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.security.support import SERVICE_SCOPE

pytestmark = pytest.mark.e2e
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")


def _canaries() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {kind: f"canary{kind}{tag}" for kind in
            ("content", "gqlcontent", "inlinecontent", "metavalue", "title", "search", "name", "context",
             "refused", "prompt")}


def test_logs_hold_no_content_metadata_or_token(local_api: Any, tmp_path_factory: Any) -> None:
    c = _canaries()
    ws = f"priv-{uuid.uuid4().hex[:6]}"
    user = local_api.token("alice", ws, name="Alice")
    ops = local_api.token("ops", ws, scope=SERVICE_SCOPE)
    tokens = [user, ops]

    def rest(method: str, path: str, token: str = user, **kw: Any) -> Any:
        return local_api.request(method, path, token=token, **kw)

    assert rest("POST", "/v1/agents", ops, json={"slug": "priv", "name": "Priv", "system_prompt": c["prompt"]}
                ).status_code == 201
    channel = rest("POST", "/v1/channels", json={"name": c["name"], "metadata": {"k": c["metavalue"]}}).json()["id"]
    session = rest("POST", f"/v1/channels/{channel}/sessions",
                   json={"title": c["title"], "metadata": {"k": c["metavalue"]}, "initial_context": c["context"]}
                   ).json()["id"]
    assert rest("POST", f"/v1/sessions/{session}/messages", json={"content": c["content"]}).status_code == 201
    assert rest("POST", f"/v1/channels/{channel}/messages", json={"content": c["content"],
                                                                  "metadata": {"m": c["metavalue"]}}).status_code == 201
    rest("PATCH", f"/v1/sessions/{session}", json={"title": c["title"], "metadata": {"k": c["metavalue"]}})
    rest("GET", f"/v1/channels/{channel}/sessions/search", params={"q": c["search"]})
    rest("GET", f"/v1/sessions/{session}/messages")
    # Refused requests carry canaries too: over-limit metadata, a too-long value, a malformed body.
    rest("POST", f"/v1/channels/{channel}/sessions", json={"metadata": {"k": c["refused"] * 40}})
    rest("POST", f"/v1/sessions/{session}/messages", data=f'{{"content": "{c["refused"]}"', headers={
        "content-type": "application/json"})
    # GraphQL: variables and inline literals (the document itself holds the content).
    sid = local_api.gql("mutation($d: TodoChatSessionInput!){createTodoChatSession(data:$d){id}}",
                        {"d": {"todoId": 77, "title": c["title"], "metadata": {"k": c["metavalue"]}}},
                        token=user)["data"]["createTodoChatSession"]["id"]
    local_api.gql("mutation($d: TodoChatMessageInput!){createTodoChatMessage(data:$d){id}}",
                  {"d": {"sessionId": sid, "message": c["gqlcontent"]}}, token=user)
    post = 'mutation{createTodoChatMessage(data:{sessionId: %s, message: "%s"}){id}}'  # noqa: UP031
    local_api.gql(post % (sid, c["inlinecontent"]), token=user)
    local_api.gql(post % (1, c["refused"]), token=user)  # NOT_FOUND, with the content inline in the document
    big = 'mutation{createTodoChatSession(data:{todoId: 77, metadata: {k: "%s"}}){id}}'  # noqa: UP031
    local_api.gql(big % (c["refused"] * 60), token=user)  # BAD_USER_INPUT
    local_api.gql("query($t: Float!, $q: String){getSearchTodoChatSessions(todoId:$t, searchQuery:$q){id}}",
                  {"t": 77, "q": c["search"]}, token=user)
    local_api.gql(f'{{getSearchTodoChatSessions(todoId: 77, searchQuery: "{c["search"]}"){{id}}}}', token=user)
    local_api.drain()

    logs = [Path(local_api.log_path)]
    base = tmp_path_factory.getbasetemp()
    logs += [p for p in base.glob("local-runtime*/chatkeep-dev.log") if p.resolve() != logs[0].resolve()]
    checked = 0
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        checked += len(text)
        if path == logs[0]:
            for kind, canary in c.items():
                assert canary not in text, f"{kind} canary found in {path}"
            for token in tokens:
                assert token not in text and token.split(".")[-1] not in text, f"a token is in {path}"
        # The startup banner prints a dev token for workspace `dev` on purpose (the developer's terminal, a
        # local-only secret): everything after it, the request and function logs, must hold no token.
        _, marker, after = text.partition("dev endpoints:")
        found = JWT.findall(after if marker else text)
        assert not found, f"a bearer token is logged in {path}: {found[0][:20]}..."
    assert checked > 10_000, "the log is suspiciously small: is the runtime logging at all?"
    print(f"\nlog privacy: {len(logs)} log(s), {checked} characters checked, {len(c)} canaries, no leak")
