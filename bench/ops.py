"""The operation catalogue: every GraphQL operation and REST route, how to set it up against moto, its
DynamoDB request budget (issue 6) and the minimum the data model allows (docs/architecture.md), with why.
Used by the request-count section, the warm-overhead section and tests/integration/test_request_budgets.py.

A scenario's `setup(world)` writes what the operation needs and returns `run()`, which performs the
operation once (a warm call: the client exists, the document is cached) and returns its reply."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from bench.common import RequestCounter, claims_for, http_event

SERVICE_SCOPE = "chatkeep/service"

# The guide's documents, verbatim in substance (Apollo sends them as written).
GET_SESSIONS = """query GetTodoChatSessions($todoId: Float!, $limit: Int, $offset: Int) {
  getTodoChatSessions(todoId: $todoId, limit: $limit, offset: $offset) {
    sessions { id title createdAt updatedAt defaultBotId }
    totalCount
  }
}"""
GET_SESSION = """query GetOneTodoChatSession($sessionId: Float!) {
  getOneTodoChatSession(sessionId: $sessionId) {
    id title createdAt updatedAt defaultBotId todoId
    messages { id message createdAt sentBy { id firstName } isBotReply }
  }
}"""
CREATE_SESSION = """mutation CreateTodoChatSession($data: TodoChatSessionInput!) {
  createTodoChatSession(data: $data) { id title createdAt defaultBotId todoId }
}"""
UPDATE_SESSION = """mutation UpdateTodoChatSession($data: TodoChatSessionInput!, $id: Float!) {
  updateTodoChatSession(data: $data, id: $id) { id title updatedAt }
}"""
BOT_CONFIG = """mutation UpdateBotConfig($data: BotCustomConfigInput!) {
  updateTodoChatSessionCustomBotConfig(data: $data) { id botConfig { botId model temperature } }
}"""
DELETE_SESSION = """mutation DeleteTodoChatSession($id: Float!) {
  deleteTodoChatSession(id: $id) { id }
}"""
DELETE_MANY = """mutation DeleteManyTodoChatSession($ids: [Int!]!) {
  deleteManyTodoChatSession(ids: $ids)
}"""
STARTER = """query GetOrCreateUserStartTodoChatSession($botSlug: String) {
  getOrCreateUserStartTodoChatSession(botSlug: $botSlug) { id title defaultBotId }
}"""
SEARCH = """query GetSearchTodoChatSessions($todoId: Float!, $searchQuery: String) {
  getSearchTodoChatSessions(todoId: $todoId, searchQuery: $searchQuery) { id title createdAt }
}"""
CREATE_MESSAGE = """mutation CreateTodoChatMessage($data: TodoChatMessageInput!) {
  createTodoChatMessage(data: $data) { id message createdAt isBotReply sentBy { id firstName } }
}"""
CLOSE_SESSION = """mutation CloseTodoChatSession($id: Float!) {
  closeTodoChatSession(id: $id) { id status }
}"""

SEARCH_WORDS = ["billing", "refund", "invoice"]
MESSAGE_TEXT = "Hello, I was charged twice for the March invoice; could you issue a refund for the billing error?"


class Reply:
    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body

    def check(self) -> Reply:
        """Raise when the operation failed: a budget met by an error is no budget met."""
        if self.status >= 400 or (isinstance(self.body, dict) and self.body.get("errors")):
            raise AssertionError(f"operation failed: {self.status} {json.dumps(self.body)[:400]}")
        return self

    def data(self, field: str) -> Any:
        return self.body["data"][field]


class World:
    """The handlers over moto (active, tables created), with a request counter on chatkeep's client."""

    def __init__(self) -> None:
        from chatkeep import aws
        from chatkeep.settings import get_settings
        from chatkeep_local.stream_reader import StreamReader

        self.client = aws.dynamodb()
        self.counter = RequestCounter()
        self.client.meta.events.register("before-call.dynamodb.*", self.counter)
        self.alice = claims_for("alice")
        self.bot = claims_for("svc-bot", name="Bot", scope=SERVICE_SCOPE)
        self.rng = random.Random(6)
        self.reader = StreamReader(get_settings().chat_table_name, dynamodb_client=self.client)
        self.last_event: dict[str, Any] | None = None

    # ------------------------------------------------------------ calling the handlers

    def gql(self, query: str, variables: dict[str, Any] | None = None, claims: dict[str, str] | None = None) -> Reply:
        from chatkeep.graphql.server import handle

        self.last_event = http_event("POST", "/graphql", body={"query": query, "variables": variables or {}},
                                     claims=claims or self.alice)
        out = handle(self.last_event)
        return Reply(out["statusCode"], json.loads(out["body"]))

    def rest(self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None,
             claims: dict[str, str] | None = None, route_key: str | None = None) -> Reply:
        from chatkeep.rest.app import handler

        self.last_event = http_event(method, path, body=body, claims=claims or self.alice, query=query,
                                     route_key=route_key)
        out = handler(self.last_event, None)
        text = out.get("body") or ""
        return Reply(out["statusCode"], json.loads(text) if text[:1] in "{[" and text else text)

    # ------------------------------------------------------------ fixtures

    def todo(self) -> int:
        return self.rng.randrange(10_000, 2**31 - 1)

    def session(self, todo: int, title: str = "Customer Support") -> int:
        reply = self.gql(CREATE_SESSION, {"data": {"todoId": todo, "title": title}}).check()
        return int(reply.data("createTodoChatSession")["id"])

    def message(self, sid: int, text: str = MESSAGE_TEXT) -> None:
        self.gql(CREATE_MESSAGE, {"data": {"sessionId": sid, "message": text}}).check()

    def sessions_in_distinct_shards(self, todo: int, titles: list[str], shards: int) -> list[int]:
        """Sessions of the todo each in a shard of its own (session id mod `shards`: the activity shards for a
        list, the search shards for a search): a session drawn into a shard already taken is deleted (its shard
        stays recorded, it was already). The container's lists and searches then read a known number of keys,
        the same on every run."""
        return _in_distinct_shards(titles, lambda t: self.session(todo, t), lambda sid: sid % shards,
                                   lambda sid: self.gql(DELETE_SESSION, {"id": sid}).check())

    def rest_sessions_in_distinct_shards(self, channel: str, titles: list[str], shards: int) -> list[str]:
        from chatkeep import ids

        return _in_distinct_shards(titles, lambda t: self.rest_session(channel, t),
                                   lambda ses: ids.decode(ids.Kind.SESSION, ses) % shards,
                                   lambda ses: self.rest("DELETE", f"/v1/sessions/{ses}").check())

    def channel(self) -> str:
        return self.rest("POST", "/v1/channels", {"name": "support"}).check().body["id"]

    def rest_session(self, channel: str, title: str = "Customer Support") -> str:
        return self.rest("POST", f"/v1/channels/{channel}/sessions", {"title": title}).check().body["id"]

    def settle_stream(self) -> int:
        """Feed the chat table's stream to the stream function until it is quiet (its own count updates
        come back as MODIFY records); returns the records delivered."""
        from chatkeep.stream import processor

        delivered = 0
        for _ in range(6):
            records = self.reader.read_new()
            if not records:
                return delivered
            for i in range(0, len(records), 100):
                batch = records[i:i + 100]
                result = processor.handle({"Records": batch}, None)
                if result.get("batchItemFailures"):
                    raise AssertionError(f"stream batch failed: {result}")
                delivered += len(batch)
        raise AssertionError("the stream does not settle")


def _in_distinct_shards(titles: list[str], create: Callable[[str], Any], shard_of: Callable[[Any], int],
                        delete: Callable[[Any], None]) -> list[Any]:
    kept: list[Any] = []
    taken: set[int] = set()
    for title in titles:
        while True:
            made = create(title)
            shard = shard_of(made)
            if shard not in taken:
                taken.add(shard)
                kept.append(made)
                break
            delete(made)
    return kept


@dataclass(frozen=True)
class Scenario:
    name: str
    api: str  # "graphql" or "rest"
    budget: int | None  # None: no budget in issue 6 (reported, not enforced)
    setup: Callable[[World], Callable[[], Reply]]
    guide: bool = False  # one of the guide's operations (the warm-overhead section measures these)
    _: KW_ONLY
    minimum: int  # the fewest requests the data model answers this with
    why: str  # why no fewer will do
    above_minimum: str | None = None  # why chatkeep spends more than `minimum`, when it does


def delete_many_budget(k: int) -> int:
    return math.ceil(k / 100) + math.ceil(k / 25)


# Why the minimum is what it is, for the operations that share a reason.
WHY_LIST = ("the container's own gsi1 key (the container item, the owner check, sorts first; it records the shards "
            "its sessions are in), then one Query per activity shard holding its sessions (one each here), in "
            "parallel: a busy container's activity writes are spread over 32 shards; the total comes from them "
            "when no key holds more than the page")
WHY_PAGED = ("the page's Queries read up to offset + limit + 1 sessions of each key: 25 sessions, one a shard, are "
             "read to their end, so the total needs no Select=COUNT Queries (a key holding more than that would "
             "need one COUNT Query per key: a stored counter could not apply the expiry filter the list applies)")


def list_requests(sessions: int) -> int:
    """A container's list, its sessions each in a shard of its own: its own gsi1 key, then one per shard."""
    return 1 + sessions
WHY_SEARCH = ("GetItem of the container (the shards its sessions are in: a busy container's index writes are spread "
              "over 64 keys per first character), then every word must match: the first (longest) word reads the "
              "index key of its first character in each of those shards (5 here), each later word one per shard "
              "holding a match (4), then one BatchGetItem of the matches")


def search_requests(words: int) -> int:
    """A search of `words` words in a container of SEARCH_TITLES (each session in a shard of its own) finding
    SEARCH_MATCHES of them."""
    return 1 + len(SEARCH_TITLES) + (words - 1) * SEARCH_MATCHES + 1
WHY_DELETE = "one conditional DeleteItem (ALL_OLD); messages and index entries are the stream's cascade"
WHY_DELETE_MANY = "conditional Deletes, up to 100 in one TransactWriteItems (one id: one DeleteItem)"
DELETE_MANY_ABOVE = ("deleteManyTodoChatSession reads the sessions (BatchGetItem: ownership, the count) and then "
                     "deletes them with BatchWriteItem, 25 a request: 1 read + 1 write unit a session where a "
                     "transaction takes 2 write units, an id that is not the caller's cancels none of the others, "
                     "and the count holds when botocore resends a request whose answer was lost (a resent "
                     "conditional delete finds nothing and would count 0)")
WHY_UPDATE = "one conditional UpdateItem returning ALL_NEW"
WHY_POST = ("the message (and the REST reply) carries the session's container id, which only the session item "
            "holds: GetItem, then the transaction (session update + message + id claim)")


# ---------------------------------------------------------------- GraphQL scenarios

def _get_one(w: World) -> Callable[[], Reply]:
    sid = w.session(w.todo())
    for i in range(5):
        w.message(sid, f"message {i}: {MESSAGE_TEXT}")
    return lambda: w.gql(GET_SESSION, {"sessionId": sid})


LIST_SESSIONS, PAGED_SESSIONS = 5, 25  # sessions of the list scenarios, each in a shard of its own


def _activity_shards() -> int:
    from chatkeep.repository import keys

    return keys.ACTIVITY_SHARDS


def _search_shards() -> int:
    from chatkeep.repository import keys

    return keys.SEARCH_SHARDS


def _list(w: World) -> Callable[[], Reply]:
    todo = w.todo()
    w.sessions_in_distinct_shards(todo, [f"session {i}" for i in range(LIST_SESSIONS)], _activity_shards())
    return lambda: w.gql(GET_SESSIONS, {"todoId": todo, "limit": 20, "offset": 0})


def _list_paged(w: World) -> Callable[[], Reply]:
    todo = w.todo()
    w.sessions_in_distinct_shards(todo, [f"session {i}" for i in range(PAGED_SESSIONS)], _activity_shards())
    return lambda: w.gql(GET_SESSIONS, {"todoId": todo, "limit": 10, "offset": 10})


def _create(w: World) -> Callable[[], Reply]:
    todo = w.todo()
    w.session(todo)  # an existing todo (the first write claims it: same single transaction)
    return lambda: w.gql(CREATE_SESSION, {"data": {"todoId": todo, "title": "Customer Support"}})


def _update(w: World) -> Callable[[], Reply]:
    sid = w.session(w.todo())
    return lambda: w.gql(UPDATE_SESSION, {"id": sid, "data": {"title": "Renamed"}})


def _bot_config(w: World) -> Callable[[], Reply]:
    from chatkeep import ids

    agent = w.rest("POST", "/v1/agents", {"slug": f"cfg-{w.rng.randrange(10**9)}", "name": "Config"},
                   claims=w.bot).check().body["id"]
    bot_id = ids.decode(ids.Kind.AGENT, agent)
    sid = w.session(w.todo())
    return lambda: w.gql(BOT_CONFIG, {"data": {"sessionId": sid, "botId": bot_id, "model": "m", "temperature": 0.5}})


def _post_message(w: World) -> Callable[[], Reply]:
    sid = w.session(w.todo())
    return lambda: w.gql(CREATE_MESSAGE, {"data": {"sessionId": sid, "message": MESSAGE_TEXT}})


def _starter_existing(w: World) -> Callable[[], Reply]:
    w.gql(STARTER, {"botSlug": None}).check()
    return lambda: w.gql(STARTER, {"botSlug": None})


def _delete(w: World) -> Callable[[], Reply]:
    todo = w.todo()
    pending = [w.session(todo) for _ in range(3)]
    return lambda: w.gql(DELETE_SESSION, {"id": pending.pop()})


def _close(w: World) -> Callable[[], Reply]:
    sid = w.session(w.todo())
    return lambda: w.gql(CLOSE_SESSION, {"id": sid})


def _delete_many(k: int) -> Callable[[World], Callable[[], Reply]]:
    def setup(w: World) -> Callable[[], Reply]:
        from chatkeep.service import ChatService, default_service

        service: ChatService = default_service()
        principal = _principal()
        todo = w.todo()
        sids = [service.create_session(principal, todo, title=f"s{i}").id for i in range(k)]

        def run() -> Reply:
            reply = w.gql(DELETE_MANY, {"ids": sids})
            if reply.body.get("data", {}).get("deleteManyTodoChatSession") != k:
                raise AssertionError(f"deleteMany({k}) deleted {reply.body}")
            return reply

        return run

    return setup


def _principal(sub: str = "alice", ws: str = "ws1") -> Any:
    from chatkeep.auth import Principal

    return Principal(sub=sub, workspace_id=ws, name="Alice", scopes=frozenset(), is_service=False)


SEARCH_MATCHES = 4  # sessions a search scenario finds; with one that does not match, each in a shard of its own
SEARCH_TITLES = [f"billing question {i}" for i in range(SEARCH_MATCHES)] + ["unrelated chat"]


def _search_world(w: World, todo: int) -> None:
    for sid in w.sessions_in_distinct_shards(todo, SEARCH_TITLES, _search_shards())[:SEARCH_MATCHES]:
        w.message(sid, MESSAGE_TEXT)
    w.settle_stream()


def _search(n: int) -> Callable[[World], Callable[[], Reply]]:
    def setup(w: World) -> Callable[[], Reply]:
        todo = w.todo()
        _search_world(w, todo)
        query = " ".join(SEARCH_WORDS[:n])

        def run() -> Reply:
            reply = w.gql(SEARCH, {"todoId": todo, "searchQuery": query})
            if len(reply.body.get("data", {}).get("getSearchTodoChatSessions") or []) != SEARCH_MATCHES:
                raise AssertionError(f"search {query!r} did not find the {SEARCH_MATCHES} sessions: {reply.body}")
            return reply

        return run

    return setup


# ---------------------------------------------------------------- REST scenarios

def _rest_create_channel(w: World) -> Callable[[], Reply]:
    return lambda: w.rest("POST", "/v1/channels", {"name": "support"})


def _rest_get_channel(w: World) -> Callable[[], Reply]:
    ch = w.channel()
    w.rest_session(ch)
    return lambda: w.rest("GET", f"/v1/channels/{ch}")


def _rest_create_session(w: World) -> Callable[[], Reply]:
    ch = w.channel()
    return lambda: w.rest("POST", f"/v1/channels/{ch}/sessions", {"title": "Customer Support"})


def _rest_list_sessions(w: World) -> Callable[[], Reply]:
    ch = w.channel()
    w.rest_sessions_in_distinct_shards(ch, [f"session {i}" for i in range(LIST_SESSIONS)], _activity_shards())
    return lambda: w.rest("GET", f"/v1/channels/{ch}/sessions", query={"limit": "20"})


def _rest_search(n: int) -> Callable[[World], Callable[[], Reply]]:
    def setup(w: World) -> Callable[[], Reply]:
        ch = w.channel()
        for ses in w.rest_sessions_in_distinct_shards(ch, SEARCH_TITLES, _search_shards())[:SEARCH_MATCHES]:
            w.rest("POST", f"/v1/sessions/{ses}/messages", {"content": MESSAGE_TEXT}).check()
        w.settle_stream()
        q = " ".join(SEARCH_WORDS[:n])
        return lambda: w.rest("GET", f"/v1/channels/{ch}/sessions/search", query={"q": q})

    return setup


def _rest_post_to_channel(with_session: bool) -> Callable[[World], Callable[[], Reply]]:
    def setup(w: World) -> Callable[[], Reply]:
        ch = w.channel()
        body: dict[str, Any] = {"content": MESSAGE_TEXT}
        if with_session:
            body["session_id"] = w.rest_session(ch)
        return lambda: w.rest("POST", f"/v1/channels/{ch}/messages", body)

    return setup


def _rest_session_route(method: str, suffix: str = "", body: Any = None, messages: int = 0,
                        query: dict[str, str] | None = None, fresh: bool = False
                        ) -> Callable[[World], Callable[[], Reply]]:
    def setup(w: World) -> Callable[[], Reply]:
        ch = w.channel()
        pending = [w.rest_session(ch) for _ in range(3 if fresh else 1)]
        for _ in range(messages):
            w.rest("POST", f"/v1/sessions/{pending[0]}/messages", {"content": MESSAGE_TEXT}).check()

        def run() -> Reply:
            ses = pending.pop() if fresh else pending[0]
            return w.rest(method, f"/v1/sessions/{ses}{suffix}", body, query=query)

        return run

    return setup


def _rest_create_agent(w: World) -> Callable[[], Reply]:
    counter = iter(range(1_000_000))
    return lambda: w.rest("POST", "/v1/agents", {"slug": f"agent-{next(counter)}-{w.rng.randrange(10**9)}",
                                                 "name": "Agent"}, claims=w.bot)


def _rest_agents(path_kind: str) -> Callable[[World], Callable[[], Reply]]:
    def setup(w: World) -> Callable[[], Reply]:
        created = w.rest("POST", "/v1/agents", {"slug": f"helper-{w.rng.randrange(10**9)}", "name": "Helper"},
                         claims=w.bot).check().body
        if path_kind == "list":
            return lambda: w.rest("GET", "/v1/agents", claims=w.bot)
        return lambda: w.rest("GET", f"/v1/agents/{created['id']}", claims=w.bot)

    return setup


def _rest_static(path: str) -> Callable[[World], Callable[[], Reply]]:
    return lambda w: lambda: w.rest("GET", path)


def scenarios() -> list[Scenario]:
    g, r = "graphql", "rest"
    out = [
        Scenario("getOneTodoChatSession", g, 1, _get_one, guide=True, minimum=1,
                 why="the session and its messages share a partition: one Query"),
        Scenario("getTodoChatSessions", g, list_requests(LIST_SESSIONS), _list, guide=True,
                 minimum=list_requests(LIST_SESSIONS), why=WHY_LIST),
        Scenario("getTodoChatSessions (limit 10, offset 10 of 25)", g, list_requests(PAGED_SESSIONS), _list_paged,
                 minimum=list_requests(PAGED_SESSIONS), why=WHY_PAGED),
        Scenario("createTodoChatSession", g, 2, _create, guide=True, minimum=1,
                 why="one transaction: the session and the container claim"),
        Scenario("updateTodoChatSession", g, 1, _update, guide=True, minimum=1, why=WHY_UPDATE),
        Scenario("createTodoChatMessage", g, 2, _post_message, guide=True, minimum=2, why=WHY_POST),
        Scenario("getOrCreateUserStartTodoChatSession (existing)", g, 2, _starter_existing, guide=True, minimum=2,
                 why="the user's pointer names the session, another partition: two GetItems, the second keyed "
                     "by the first"),
        *(Scenario(f"getSearchTodoChatSessions ({n} word{'s' if n > 1 else ''})", g, search_requests(n),
                   _search(n), guide=n == 1, minimum=search_requests(n), why=WHY_SEARCH) for n in (1, 2, 3)),
        Scenario("deleteTodoChatSession", g, 1, _delete, guide=True, minimum=1, why=WHY_DELETE),
        *(Scenario(f"deleteManyTodoChatSession ({k} id{'s' if k > 1 else ''})", g, delete_many_budget(k),
                   _delete_many(k), guide=k == 25, minimum=math.ceil(k / 100), why=WHY_DELETE_MANY,
                   above_minimum=DELETE_MANY_ABOVE)
          for k in (1, 25, 26, 100)),
        Scenario("updateTodoChatSessionCustomBotConfig (agent checked)", g, None, _bot_config, minimum=2,
                 why="checking the agent makes the update a transaction, which returns no item: + a GetItem "
                     "for the reply"),
        Scenario("closeTodoChatSession", g, None, _close, minimum=1, why=WHY_UPDATE),
        # REST
        Scenario("REST GET /v1/sessions/{id}", r, 1, _rest_session_route("GET", messages=2), guide=True, minimum=1,
                 why="one GetItem (this route returns no messages)"),
        Scenario("REST POST /v1/sessions/{id}/messages", r, 2,
                 _rest_session_route("POST", "/messages", {"content": MESSAGE_TEXT}), guide=True, minimum=2,
                 why=WHY_POST),
        Scenario("REST GET /v1/sessions/{id}/messages", r, 1,
                 _rest_session_route("GET", "/messages", messages=3, query={"limit": "20"}), guide=True, minimum=1,
                 why="one Query of the session's partition: the session item comes with the newest page"),
        Scenario("REST POST /v1/channels", r, None, _rest_create_channel, minimum=1,
                 why="one conditional PutItem"),
        Scenario("REST GET /v1/channels/{id}", r, None, _rest_get_channel, minimum=1 + list_requests(1),
                 why="GetItem of the channel (it records the shards its sessions are in) + a Select=COUNT Query "
                     "of its own gsi1 key and of each shard holding its sessions, for session_count (one Query "
                     "for both would return every session)"),
        Scenario("REST POST /v1/channels/{id}/sessions", r, None, _rest_create_session, minimum=2,
                 why="the channel's agent is the session's default: GetItem, then the create transaction"),
        Scenario("REST GET /v1/channels/{id}/sessions", r, list_requests(LIST_SESSIONS), _rest_list_sessions,
                 guide=True, minimum=list_requests(LIST_SESSIONS), why=WHY_LIST),
        *(Scenario(f"REST GET /v1/channels/{{id}}/sessions/search ({n} word{'s' if n > 1 else ''})", r,
                   search_requests(n), _rest_search(n), minimum=search_requests(n), why=WHY_SEARCH)
          for n in (1, 2)),
        Scenario("REST POST /v1/channels/{id}/messages (new session)", r, None, _rest_post_to_channel(False),
                 minimum=2, why="GetItem of the channel (its agent), then one transaction: session, container "
                                "claim, message, id claim"),
        Scenario("REST POST /v1/channels/{id}/messages (session_id)", r, None, _rest_post_to_channel(True),
                 minimum=2, why="the reply carries the session: GetItem (which also checks the channel), then "
                                "the post's transaction"),
        Scenario("REST PATCH /v1/sessions/{id}", r, None, _rest_session_route("PATCH", body={"title": "Renamed"}),
                 minimum=1, why=WHY_UPDATE),
        Scenario("REST POST /v1/sessions/{id}/close", r, None, _rest_session_route("POST", "/close", body={}),
                 minimum=1, why=WHY_UPDATE),
        Scenario("REST DELETE /v1/sessions/{id}", r, 1, _rest_session_route("DELETE", fresh=True), minimum=1,
                 why=WHY_DELETE),
        Scenario("REST POST /v1/agents", r, None, _rest_create_agent, minimum=2,
                 why="whether the agent becomes the workspace default depends on the default pointer, and a "
                     "failed condition cancels a whole transaction: GetItem, then the transaction"),
        Scenario("REST GET /v1/agents", r, None, _rest_agents("list"), minimum=1,
                 why="one gsi1 Query of the workspace's agents"),
        Scenario("REST GET /v1/agents/{id}", r, None, _rest_agents("get"), minimum=1, why="one GetItem"),
        Scenario("REST GET /openapi.json", r, None, _rest_static("/openapi.json"), minimum=0,
                 why="built from the routes' declarations, in memory"),
        Scenario("REST GET /docs", r, None, _rest_static("/docs"), minimum=0, why="a static page (Swagger UI)"),
    ]
    return out


def measure(world: World, scenario: Scenario) -> tuple[int, dict[str, int], Reply]:
    """Set the scenario up (which warms the client, the handlers and the cached documents of the fixtures),
    then count the DynamoDB requests of one call."""
    run = scenario.setup(world)
    world.counter.reset()
    reply = run().check()
    return world.counter.total, dict(world.counter.calls), reply
