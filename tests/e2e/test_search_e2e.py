"""Search over `chatkeep dev` (GraphQL over HTTP; the local stream poller runs the stream function):
a word written in a message is found by its prefix within a second; accents and case do not matter;
every word of the query must match; renames and deletes are reflected.

Uses the `local_api` fixture (tests/conftest.py): `.token(sub, workspace, name=None, scope=None)`,
`.gql(query, variables, token)`, `.drain()` (wait until the stream poller has caught up)."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

CREATE_SESSION = """
mutation Create($data: TodoChatSessionInput!) {
  createTodoChatSession(data: $data) { id title todoId }
}"""
POST = """
mutation Post($data: TodoChatMessageInput!) {
  createTodoChatMessage(data: $data) { id message }
}"""
SEARCH = """
query Search($todoId: Float!, $q: String) {
  getSearchTodoChatSessions(todoId: $todoId, searchQuery: $q) { id title }
}"""
RENAME = """
mutation Rename($id: Float!, $data: TodoChatSessionInput!) {
  updateTodoChatSession(id: $id, data: $data) { id title }
}"""
DELETE = """
mutation Delete($id: Float!) { deleteTodoChatSession(id: $id) { id } }"""


def _data(response: Any) -> dict[str, Any]:
    body = response.json() if hasattr(response, "json") else response
    assert not body.get("errors"), body.get("errors")
    return body["data"]


class Client:
    def __init__(self, local_api: Any, sub: str) -> None:
        self.api = local_api
        self.workspace = f"ws-search-{random.randrange(10**9)}"
        self.token = local_api.token(sub, self.workspace, name="Searcher")
        self.todo = float(random.randrange(1, 2**31 - 1))

    def gql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return _data(self.api.gql(query, variables, self.token))

    def session(self, title: str | None = None) -> int:
        data = self.gql(CREATE_SESSION, {"data": {"todoId": self.todo, "title": title}})
        return int(data["createTodoChatSession"]["id"])

    def post(self, sid: int, text: str) -> None:
        self.gql(POST, {"data": {"sessionId": float(sid), "message": text}})

    def search(self, q: str | None) -> list[int]:
        data = self.gql(SEARCH, {"todoId": self.todo, "q": q})
        return [int(s["id"]) for s in data["getSearchTodoChatSessions"]]


@pytest.fixture
def client(local_api: Any) -> Client:
    return Client(local_api, "searcher")


def test_message_word_found_by_prefix_within_a_second(client: Client):
    sid = client.session("Weekly sync")
    client.post(sid, "We should refactor the Zygomorphic parser")
    started = time.monotonic()
    found: list[int] = []
    while time.monotonic() - started < 1.0:
        found = client.search("zygo")
        if found:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert found == [sid], f"not found after {elapsed:.2f}s"
    assert elapsed < 1.0


def test_accents_and_case_do_not_matter(client: Client):
    sid = client.session("Notes")
    client.post(sid, "Le CAFÉ de l'Élysée est fermé")
    client.api.drain()
    for q in ("cafe", "CAFÉ", "Café", "elys", "ÉLYSÉE", "ferme", "FERMÉ"):
        assert client.search(q) == [sid], q


def test_every_word_must_match_and_titles_rank_first(client: Client):
    both = client.session("Budget review")
    one = client.session("Unrelated")
    content_only = client.session("Misc")
    client.post(both, "the budget for marketing")
    client.post(one, "marketing plans only")
    client.post(content_only, "budget numbers, also reviewed")
    client.api.drain()
    assert client.search("budg mark") == [both]
    assert client.search("mark") and set(client.search("mark")) == {both, one}
    assert client.search("budget zzzz") == []
    # "budget rev": title words for `both` (title hit on every word) rank before content-only hits
    assert client.search("budget rev") == [both, content_only]


def test_rename_and_delete_are_reflected(client: Client):
    sid = client.session("Quarterly roadmap")
    client.api.drain()
    assert client.search("roadm") == [sid]
    _data(client.api.gql(RENAME, {"id": float(sid), "data": {"title": "Annual plan"}}, client.token))
    client.api.drain()
    assert client.search("roadm") == []
    assert client.search("annu") == [sid]
    _data(client.api.gql(DELETE, {"id": float(sid)}, client.token))
    client.api.drain()
    assert client.search("annu") == []
