"""Issue 18, item 10: what a client can rely on when it pages a channel's sessions while they get messages
(docs/api-rest.md, "Paging"). In process (REST handler, moto, the stream function fed the table's real stream),
the clock moved between writes so that every write is a distinct moment, as in production.

REST cursor paging (most recent activity first): no session is shown twice; every session without activity
since the paging started is shown exactly once; a session that got activity (or was created) meanwhile may be
missing, and reading from the top again, down to the first session already seen and unchanged since, finds it."""

from __future__ import annotations

from typing import Any

from tests.security.support import call_rest, claims, rest_event, settle_stream

ALICE = claims("alice", "ws1", name="Alice")
SESSIONS = 30
PAGE = 7


def rest(method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
    status, reply, raw = call_rest(rest_event(method, path, claims_=ALICE, body=body, query=query))
    assert status < 300, raw[:300]
    return reply


def pages(channel: str) -> Any:
    """Every page of the channel's sessions, lazily: the caller writes between pages."""
    cursor = None
    while True:
        page = rest("GET", f"/v1/channels/{channel}/sessions",
                    query={"limit": str(PAGE), **({"cursor": cursor} if cursor else {})})
        yield page["data"]
        if not page["has_more"]:
            return
        cursor = page["next_cursor"]


def test_given_messages_while_paging_by_cursor_then_no_repeat_no_untouched_session_missed_and_the_rest_on_top(
        dynamodb: Any, clock_offset: Any) -> None:
    from chatkeep import settings
    from chatkeep_local.stream_reader import StreamReader

    reader = StreamReader(settings.get_settings().chat_table_name, dynamodb_client=dynamodb)
    channel = rest("POST", "/v1/channels", {})["id"]
    created = []
    for _ in range(SESSIONS):
        clock_offset.advance(1)
        created.append(rest("POST", f"/v1/channels/{channel}/sessions", {})["id"])
    settle_stream(reader)

    seen: dict[str, dict[str, Any]] = {}  # id -> the session as the page showed it
    shown: list[str] = []
    touched: set[str] = set()
    for page in pages(channel):
        shown += [s["id"] for s in page]
        seen.update({s["id"]: s for s in page})
        # Between pages: a message to the oldest session not shown yet (it jumps above the cursor), one to a
        # session already shown, and a new session.
        clock_offset.advance(1)
        unseen = [s for s in created if s not in seen and s not in touched]
        for target in [*unseen[:1], shown[0]]:
            rest("POST", f"/v1/sessions/{target}/messages", {"content": "while paging"})
            touched.add(target)
        touched.add(rest("POST", f"/v1/channels/{channel}/sessions", {})["id"])
    settle_stream(reader)  # last_message_at is the stream's: a client reads again a second or two later

    assert len(shown) == len(seen), "a session was shown twice"
    assert set(created) - touched <= set(seen), "a session without activity during the paging was missed"
    missed = (set(created) | touched) - set(seen)
    assert missed, "the scenario must move sessions not shown yet above the cursor"

    # docs/api-rest.md: read from the top again down to the first session already seen and unchanged since
    # (same last_message_at): it and everything after it had no activity since, so they were all shown.
    found: list[str] = []
    for page in pages(channel):
        stop = next((i for i, s in enumerate(page)
                     if s["id"] in seen and s["last_message_at"] == seen[s["id"]]["last_message_at"]), None)
        found += [s["id"] for s in page[:stop]]
        if stop is not None:
            break
    assert missed <= set(found), missed - set(found)
