"""The REST API end to end over `chatkeep dev`: HTTP, the JWT authorizer, the handler, DynamoDB (moto server)
and the stream processor (message counts, search), as a client of the Sessions guide would use it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

SERVICE = "chatkeep/service"


class Api:
    def __init__(self, local_api: Any, token: str) -> None:
        self.local_api = local_api
        self.token = token

    def __call__(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                 **params: Any) -> Any:
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if body is not None:
            kwargs["json"] = body
        if params:
            kwargs["params"] = params
        return self.local_api.request(method, path, token=self.token, **kwargs)


@pytest.fixture
def workspace() -> str:
    return f"ws-rest-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def user(local_api: Any, workspace: str) -> Api:
    return Api(local_api, local_api.token("user-1", workspace, name="Ada"))


@pytest.fixture
def service(local_api: Any, workspace: str) -> Api:
    return Api(local_api, local_api.token("bot-1", workspace, scope=SERVICE))


def pages(api: Api, path: str, key: str, **params: Any) -> list[str]:
    """Follow a history in pages of 2, passing last_id as `key` (after/before)."""
    seen: list[str] = []
    extra: dict[str, Any] = {}
    while True:
        reply = api("GET", path, limit=2, **params, **extra)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        assert len(page["data"]) <= 2
        seen += [m["content"] for m in page["data"]]
        if not page["has_more"]:
            return seen
        extra = {key: page["last_id"]}


def test_rest_session_lifecycle(local_api: Any, user: Api, service: Api) -> None:
    # an agent (service scope) and a channel that uses it by default
    agent = service("POST", "/v1/agents", {"slug": "support", "name": "Support", "model": "gpt-x"})
    assert agent.status_code == 201, agent.text
    assert user("POST", "/v1/agents", {"slug": "mine", "name": "Mine"}).status_code == 403
    channel = user("POST", "/v1/channels", {"name": "Billing", "agent_id": agent.json()["id"]})
    assert channel.status_code == 201, channel.text
    cid = channel.json()["id"]

    # a session with metadata and initial context: the guide's response shape
    created = user("POST", f"/v1/channels/{cid}/sessions", {
        "metadata": {"ticket": "T-1042", "customer": "c_77"},
        "initial_context": "The customer was double charged for invoice 42.",
        "title": "Double charge"})
    assert created.status_code == 201, created.text
    session = created.json()
    sid = session["id"]
    assert sid.startswith("ses_") and session["channel_id"] == cid and session["agent_id"] == agent.json()["id"]
    assert session["status"] == "active" and session["message_count"] == 0
    assert session["metadata"] == {"ticket": "T-1042", "customer": "c_77"}
    assert session["initial_context"].startswith("The customer") and session["expires_at"].endswith("Z")

    # user and assistant messages
    for i in range(3):
        reply = user("POST", f"/v1/sessions/{sid}/messages", {"content": f"user says {i}"})
        assert reply.status_code == 201, reply.text
        assert reply.json()["role"] == "user" and reply.json()["sender_id"] == "user-1"
        reply = service("POST", f"/v1/sessions/{sid}/messages", {"content": f"bot says {i}", "role": "assistant"})
        assert reply.status_code == 201, reply.text
        assert reply.json()["role"] == "assistant" and reply.json()["sender_id"] is None
    assert user("POST", f"/v1/sessions/{sid}/messages", {"content": "x", "role": "assistant"}).status_code == 403

    # the stream processor keeps message_count and last_message_at
    local_api.drain()
    got = user("GET", f"/v1/sessions/{sid}").json()
    assert got["message_count"] == 6 and got["last_message_at"] is not None

    # history in pages, both ways
    chronological = [f"{who} says {i}" for i in range(3) for who in ("user", "bot")]
    assert pages(user, f"/v1/sessions/{sid}/messages", "after", order="asc") == chronological
    assert pages(user, f"/v1/sessions/{sid}/messages", "before", order="desc") == chronological[::-1]
    assert pages(user, f"/v1/sessions/{sid}/messages", "before") == chronological[::-1]  # desc by default

    # search (served from the stream-maintained index)
    found = user("GET", f"/v1/channels/{cid}/sessions/search", q="DOUBLE charg").json()["data"]
    assert [s["id"] for s in found] == [sid]
    assert user("GET", f"/v1/channels/{cid}/sessions/search", q="bot says 2").json()["data"][0]["id"] == sid

    # list with total_count
    listing = user("GET", f"/v1/channels/{cid}/sessions").json()
    assert listing["total_count"] == 1 and listing["data"][0]["id"] == sid and listing["has_more"] is False

    # patch
    patched = user("PATCH", f"/v1/sessions/{sid}", {"title": "Refund issued", "metadata": {"ticket": "T-1042"}})
    assert patched.status_code == 200 and patched.json()["title"] == "Refund issued"

    # close: readable, but no more messages
    closed = user("POST", f"/v1/sessions/{sid}/close")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    refused = user("POST", f"/v1/sessions/{sid}/messages", {"content": "one more thing"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "session_closed"
    assert len(user("GET", f"/v1/sessions/{sid}/messages", limit=100).json()["data"]) == 6

    # delete: 204, then 404 everywhere
    assert user("DELETE", f"/v1/sessions/{sid}").status_code == 204
    assert user("GET", f"/v1/sessions/{sid}").status_code == 404
    assert user("GET", f"/v1/sessions/{sid}/messages").status_code == 404
    assert user("DELETE", f"/v1/sessions/{sid}").status_code == 404


def test_rest_session_expires_after_inactivity(local_api: Any, user: Api) -> None:
    cid = user("POST", "/v1/channels", {"name": "short-lived"}).json()["id"]
    session = user("POST", f"/v1/channels/{cid}/sessions", {"idle_timeout_seconds": 60}).json()
    sid = session["id"]
    assert user("POST", f"/v1/sessions/{sid}/messages", {"content": "hello"}).status_code == 201
    local_api.advance_clock(120)
    refused = user("POST", f"/v1/sessions/{sid}/messages", {"content": "still there?"})
    assert refused.status_code == 409, refused.text
    assert refused.json() == {"error": {"code": "session_expired", "message": refused.json()["error"]["message"]}}
    got = user("GET", f"/v1/sessions/{sid}")
    assert got.status_code == 200 and got.json()["status"] == "expired"  # still readable
    assert [m["content"] for m in user("GET", f"/v1/sessions/{sid}/messages").json()["data"]] == ["hello"]
    # sending to the channel without a session starts a new one
    fresh = user("POST", f"/v1/channels/{cid}/messages", {"content": "starting over"})
    assert fresh.status_code == 201 and fresh.json()["session"]["id"] != sid
    assert fresh.json()["session"]["status"] == "active"


def test_rest_idempotency_key_retry(local_api: Any, user: Api) -> None:
    cid = user("POST", "/v1/channels", {"name": "retries"}).json()["id"]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"content": "please refund invoice 42", "metadata": {"source": "mobile"}}
    first = user("POST", f"/v1/channels/{cid}/messages", body, headers=key)
    assert first.status_code == 201, first.text
    retry = user("POST", f"/v1/channels/{cid}/messages", body, headers=key)
    assert retry.status_code == first.status_code and retry.json() == first.json()
    assert retry.headers.get("Idempotent-Replayed") == "true"
    local_api.drain()
    # nothing new: one session in the channel, one message in it
    channel = user("GET", f"/v1/channels/{cid}").json()
    assert channel["session_count"] == 1
    sid = first.json()["session"]["id"]
    assert len(user("GET", f"/v1/sessions/{sid}/messages").json()["data"]) == 1
    assert user("GET", f"/v1/sessions/{sid}").json()["message_count"] == 1
    other = user("POST", f"/v1/channels/{cid}/messages", {"content": "different"}, headers=key)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_rest_isolation_and_errors(local_api: Any, user: Api, workspace: str) -> None:
    cid = user("POST", "/v1/channels", {"name": "private"}).json()["id"]
    sid = user("POST", f"/v1/channels/{cid}/sessions", {}).json()["id"]
    stranger = Api(local_api, local_api.token("user-1", f"{workspace}-other"))
    colleague = Api(local_api, local_api.token("user-2", workspace))
    for api in (stranger, colleague):
        assert api("GET", f"/v1/channels/{cid}").status_code == 404
        assert api("GET", f"/v1/sessions/{sid}").status_code == 404
    anonymous = local_api.request("GET", f"/v1/sessions/{sid}")
    assert anonymous.status_code == 401
    mismatch = user("GET", f"/v1/sessions/{sid}", headers={"X-Workspace-Id": "someone-else"})
    assert mismatch.status_code == 403 and mismatch.json()["error"]["code"] == "forbidden"
    malformed = local_api.request("POST", f"/v1/channels/{cid}/sessions", token=user.token, data="{oops",
                                  headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"
    assert user("GET", "/v1/sessions/not-an-id").status_code == 400
    too_big = user("POST", f"/v1/sessions/{sid}/messages", {"content": "x" * (32 * 1024 + 1)})
    assert too_big.status_code == 413 and "32768" in too_big.json()["error"]["message"]


def test_rest_documents(local_api: Any) -> None:
    spec = local_api.request("GET", "/openapi.json")
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.1")
    assert "/v1/sessions/{session_id}/messages" in spec.json()["paths"]
    docs = local_api.request("GET", "/docs")
    assert docs.status_code == 200 and "SwaggerUIBundle" in docs.text and "unpkg.com" not in docs.text
