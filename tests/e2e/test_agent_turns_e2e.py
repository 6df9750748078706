"""A managed agent answers over `chatkeep dev`: REST post -> table -> stream processor -> turn queue (SQS on moto)
-> AgentTurnFunction -> the stand-in model over Bedrock's wire protocol -> one reply that grows, then completes
with usage. Everything a deployed turn goes through, locally."""

from __future__ import annotations

import time
import uuid
from typing import Any

MODEL = "amazon.nova-lite-v1:0"


def _world(local_api: Any) -> tuple[str, str, str]:
    ws = f"turns-{uuid.uuid4().hex[:8]}"
    bot = local_api.token("ops", ws, scope="chatkeep/service")
    user = local_api.token("ada", ws, name="Ada")
    agent = local_api.request("POST", "/v1/agents", bot, json={
        "slug": "helper", "name": "Helper", "provider": "bedrock", "model": MODEL,
        "system_prompt": "You are terse."}).json()
    channel = local_api.request("POST", "/v1/channels", user, json={"agent_id": agent["id"]}).json()
    session = local_api.request("POST", f"/v1/channels/{channel['id']}/sessions", user,
                                json={"initial_context": "The user is on the Pro plan."}).json()
    return user, bot, session["id"]


def _replies(local_api: Any, user: str, sid: str) -> list[dict[str, Any]]:
    page = local_api.request("GET", f"/v1/sessions/{sid}/messages?order=asc", user).json()
    return [m for m in page["data"] if m["status"] is not None]


def test_given_a_bedrock_agent_when_a_user_posts_then_the_reply_grows_and_completes_with_usage(local_api: Any) -> None:
    user, bot, sid = _world(local_api)
    local_api.request("DELETE", "/_local/model/requests")
    posted = local_api.request("POST", f"/v1/sessions/{sid}/messages", user, json={"content": "Which plan am I on?"})
    assert posted.status_code == 201 and posted.json()["turn"]["status"] == "queued"
    seen: list[tuple[str, int]] = []  # (status, length of the content) as a client polling would see them
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replies = _replies(local_api, user, sid)
        if replies:
            state = (replies[0]["status"], len(replies[0]["content"]))
            if not seen or seen[-1] != state:
                seen.append(state)
            if replies[0]["status"] != "streaming":
                break
        time.sleep(0.05)
    (reply,) = _replies(local_api, user, sid)
    print("reply states seen while polling:", seen)
    print("final reply:", reply)
    assert reply["status"] == "complete" and reply["stop_reason"] == "end_turn" and reply["model"] == MODEL
    assert reply["usage"]["input_tokens"] > 0 and reply["usage"]["output_tokens"] > 0
    assert 'You said: "Which plan am I on?"' in reply["content"]
    assert seen[0][0] == "streaming" and seen[0][1] < len(reply["content"])  # it grew while we watched
    session = local_api.request("GET", f"/v1/sessions/{sid}", user).json()
    assert session["turn"]["status"] == "complete" and session["usage"] == reply["usage"]
    (request,) = [r for r in local_api.request("GET", "/_local/model/requests").json()
                  if r["body"].get("requestMetadata", {}).get("session_id")]
    assert request["body"]["system"] == [{"text": "You are terse."}, {"text": "The user is on the Pro plan."}]
    usage = local_api.request("GET", "/v1/usage", bot).json()["data"]
    assert [(u["model"], u["turns"]) for u in usage] == [(MODEL, 1)]


def test_given_a_stalled_model_when_the_user_cancels_then_the_partial_reply_stays_cancelled(local_api: Any) -> None:
    user, _, sid = _world(local_api)
    local_api.request("POST", "/_local/model/faults", json={"kind": "stall", "seconds": 20, "after_deltas": 1})
    try:
        local_api.request("POST", f"/v1/sessions/{sid}/messages", user, json={"content": "tell me everything"})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _replies(local_api, user, sid):
            time.sleep(0.05)
        asked = time.monotonic()
        assert local_api.request("POST", f"/v1/sessions/{sid}/turn/cancel", user).status_code == 200
        while time.monotonic() < deadline and _replies(local_api, user, sid)[0]["status"] == "streaming":
            time.sleep(0.05)
        stopped_after = time.monotonic() - asked
    finally:
        local_api.request("DELETE", "/_local/model/faults")
    (reply,) = _replies(local_api, user, sid)
    print(f"cancel took effect after {stopped_after:.2f} s; reply: {reply['status']} {reply['content']!r}")
    assert reply["status"] == "cancelled" and reply["content"] and stopped_after < 2.0


def test_given_context_an_override_and_two_user_messages_in_a_row_then_the_model_gets_them_as_converse_wants(
        local_api: Any) -> None:
    user, bot, sid = _world(local_api)
    from chatkeep import ids

    gql_sid = ids.decode(ids.Kind.SESSION, sid)
    session = local_api.request("GET", f"/v1/sessions/{sid}", user).json()
    override = local_api.gql(
        "mutation($d: BotCustomConfigInput!) { updateTodoChatSessionCustomBotConfig(data: $d) "
        "{ botConfig { model } } }",
        {"d": {"sessionId": gql_sid, "botId": ids.decode(ids.Kind.AGENT, session["agent_id"]),
               "model": "anthropic.claude-3-haiku-20240307-v1:0", "temperature": 0.3}}, token=user)
    assert "errors" not in override, override
    local_api.request("POST", "/_local/model/faults", json={"kind": "stall", "seconds": 20})  # hold the first turn
    try:
        local_api.request("POST", f"/v1/sessions/{sid}/messages", user, json={"content": "first question"})
        assert local_api.request("POST", f"/v1/sessions/{sid}/turn/cancel", user).status_code == 200
    finally:
        local_api.request("DELETE", "/_local/model/faults")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the cancelled turn ends (queued: at once; running: within a second)
        turn = local_api.request("GET", f"/v1/sessions/{sid}", user).json()["turn"]
        if turn["status"] == "cancelled":
            break
        time.sleep(0.05)
    local_api.request("DELETE", "/_local/model/requests")
    second = local_api.request("POST", f"/v1/sessions/{sid}/messages", user, json={"content": "second question"})
    assert second.status_code == 201, second.text
    while time.monotonic() < deadline and not [r for r in _replies(local_api, user, sid) if r["status"] == "complete"]:
        time.sleep(0.05)
    (request,) = local_api.request("GET", "/_local/model/requests").json()
    print("the stand-in received:", request["model_id"], request["body"])
    body = request["body"]
    assert request["model_id"] == "anthropic.claude-3-haiku-20240307-v1:0"
    assert body["inferenceConfig"]["temperature"] == 0.3
    assert body["system"] == [{"text": "You are terse."}, {"text": "The user is on the Pro plan."}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "first question\n\nsecond question"}]}]
