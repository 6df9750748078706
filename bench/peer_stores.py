"""The stores the peers section drives with one workload: chatkeep through the handlers template.yaml declares,
LangChain's DynamoDBChatMessageHistory, LangGraph's DynamoDB checkpointer and the plain one-item-per-message
table (bench/plain_store.py). Each store is started inside its own moto (fresh tables); a writer is what one
caller (one Lambda instance, one app process) holds on one conversation: its own boto3 client, so the
concurrency test's 16 writers are 16 callers. Peers whose packages are missing raise `Unavailable`."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from importlib import metadata
from typing import Any, Protocol

import boto3

from bench.common import LambdaContext, claims_for, http_event

REGION = "us-east-1"
INSTALL = "pip install -e '.[peers]' (make bench installs it)"


class Unavailable(Exception):
    """The store's packages do not import here; the message says which and why."""


class Writer(Protocol):
    def clients(self) -> list[Any]: ...  # the botocore clients its requests go through (to meter them)
    def append(self, text: str) -> None: ...
    def seed(self, text: str, n: int) -> None: ...  # n messages the quickest way the store's own API allows
    def history(self) -> list[str]: ...  # the whole conversation, oldest first
    def newest(self, n: int) -> list[str]: ...  # what a chat screen or a prompt reads: the last n


class Store(Protocol):
    name: str
    how: str  # what "append" and "read" are, for the table's notes

    def start(self) -> None: ...  # inside a fresh moto: create the tables
    def tables(self) -> list[str]: ...
    def new_conversation(self) -> str: ...
    def writer(self, conversation: str) -> Writer: ...
    def concurrent_writer(self, conversation: str) -> Writer: ...  # safe to run next to 15 others


def versions(*distributions: str) -> dict[str, str]:
    return {d: metadata.version(d) for d in distributions}


def _require(modules: Callable[[], Any], distributions: tuple[str, ...]) -> dict[str, str]:
    try:
        modules()
        return versions(*distributions)
    except (ImportError, metadata.PackageNotFoundError) as error:
        raise Unavailable(f"{type(error).__name__}: {error} (install: {INSTALL}){_pip_said()}") from None


def _pip_said() -> str:
    """What pip answered when `make bench` tried to install the extra and could not (its log's last lines)."""
    from bench.common import RESULTS

    log = RESULTS / "peers-install.log"
    errors = [line for line in (log.read_text(errors="replace").splitlines() if log.exists() else [])
              if line.startswith("ERROR")]
    return f"; pip said: {' / '.join(errors[-3:])}" if errors else ""


def _create_table(name: str, hash_key: str, range_key: str | None = None) -> None:
    keys = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys])


class _OneByOne:
    def append(self, text: str) -> None:
        raise NotImplementedError

    def seed(self, text: str, n: int) -> None:
        for _ in range(n):
            self.append(text)


# ---------------------------------------------------------------- chatkeep, through its declared handlers

class _ChatkeepRest(_OneByOne):
    """REST function: POST /v1/sessions/{id}/messages; GET .../messages pages of 100 (the route's maximum),
    newest first (its first page is one Query), each page before the last id of the one before."""

    def __init__(self, sid: int) -> None:
        from chatkeep import ids
        from chatkeep_local.harness import declared_handler

        self.handler = declared_handler("RestApiFunction")
        self.path = f"/v1/sessions/{ids.encode(ids.Kind.SESSION, sid)}/messages"
        self.claims = claims_for("alice")

    def clients(self) -> list[Any]:
        from chatkeep import aws

        return [aws.dynamodb()]

    def _call(self, method: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        out = self.handler(http_event(method, self.path, body=body, claims=self.claims, query=query), LambdaContext())
        if out["statusCode"] >= 300:
            raise RuntimeError(f"{method} {self.path}: {out['statusCode']} {out.get('body', '')[:300]}")
        return json.loads(out["body"])

    def append(self, text: str) -> None:
        self._call("POST", {"content": text})

    def history(self) -> list[str]:
        query, out = {"limit": "100"}, []
        while True:
            page = self._call("GET", query=query)
            out += [m["content"] for m in page["data"]]
            if not page["has_more"]:
                return out[::-1]
            query["before"] = page["last_id"]

    def newest(self, n: int) -> list[str]:
        return [m["content"] for m in reversed(self._call("GET", query={"limit": str(n)})["data"])]


class _ChatkeepGraphql(_ChatkeepRest):
    """GraphQL function's createTodoChatMessage. Used for the concurrent writers: Powertools' REST resolver
    keeps the current event on its module-level app (Lambda never runs two requests at once in one
    environment), whereas a GraphQL request keeps its state in its own context."""

    def __init__(self, sid: int) -> None:
        from chatkeep_local.harness import declared_handler

        super().__init__(sid)
        self.graphql, self.sid = declared_handler("GraphqlApiFunction"), sid

    def append(self, text: str) -> None:
        from bench.ops import CREATE_MESSAGE

        out = self.graphql(http_event("POST", "/graphql", claims=self.claims, body={
            "query": CREATE_MESSAGE, "variables": {"data": {"sessionId": self.sid, "message": text}}}),
            LambdaContext())
        if out["statusCode"] != 200 or json.loads(out["body"]).get("errors"):
            raise RuntimeError(f"createTodoChatMessage: {out['statusCode']} {out['body'][:300]}")


class ChatkeepStore:
    name = "chatkeep"
    how = ("REST function (template.yaml's RestApiFunction): append = POST /v1/sessions/{id}/messages; history = "
           "GET /v1/sessions/{id}/messages, 100 a page newest first, each page before the last id of the previous one")

    def __init__(self) -> None:
        self.rng = random.Random(23)

    def start(self) -> None:
        pass  # the caller runs chatkeep inside bench.common.moto_tables(): the tables of template.yaml

    def tables(self) -> list[str]:
        from chatkeep.settings import get_settings

        return [get_settings().chat_table_name]

    def new_conversation(self) -> str:
        from chatkeep_local.harness import declared_handler

        from bench.ops import CREATE_SESSION

        variables = {"data": {"todoId": self.rng.randrange(10_000, 2**31 - 1), "title": "Customer Support"}}
        out = declared_handler("GraphqlApiFunction")(
            http_event("POST", "/graphql", claims=claims_for("alice"),
                       body={"query": CREATE_SESSION, "variables": variables}), LambdaContext())
        return str(int(json.loads(out["body"])["data"]["createTodoChatSession"]["id"]))  # a GraphQL Float

    def writer(self, conversation: str) -> Writer:
        return _ChatkeepRest(int(conversation))

    def concurrent_writer(self, conversation: str) -> Writer:
        return _ChatkeepGraphql(int(conversation))


# ---------------------------------------------------------------- LangChain

class LangChainStore:
    name = "LangChain DynamoDBChatMessageHistory"
    how = ("append = add_message(HumanMessage) (GetItem of the whole history, UpdateItem writing it back); "
           "history = .messages (GetItem); one history object per conversation, reused")
    table = "langchain-history"

    def __init__(self) -> None:
        def load() -> None:
            from langchain_community.chat_message_histories import DynamoDBChatMessageHistory  # noqa: F401
            from langchain_core.messages import HumanMessage  # noqa: F401

        self.versions = _require(load, ("langchain-community", "langchain-core"))

    def start(self) -> None:
        _create_table(self.table, "SessionId")

    def tables(self) -> list[str]:
        return [self.table]

    def new_conversation(self) -> str:
        return f"conversation-{random.getrandbits(48):x}"

    def writer(self, conversation: str) -> Writer:
        return _LangChainWriter(self.table, conversation)

    concurrent_writer = writer


class _LangChainWriter:
    def __init__(self, table: str, conversation: str) -> None:
        from langchain_community.chat_message_histories import DynamoDBChatMessageHistory

        self.history_store = DynamoDBChatMessageHistory(table_name=table, session_id=conversation,
                                                        boto3_session=boto3.Session(region_name=REGION))

    def clients(self) -> list[Any]:
        return [self.history_store.table.meta.client]

    def append(self, text: str) -> None:
        from langchain_core.messages import HumanMessage

        self.history_store.add_message(HumanMessage(text))

    def history(self) -> list[str]:
        return [m.content for m in self.history_store.messages]

    def newest(self, n: int) -> list[str]:
        return self.history()[-n:]  # the history is one item: the last n cost the whole read

    def seed(self, text: str, n: int) -> None:
        from langchain_core.messages import HumanMessage

        if n:
            self.history_store.add_messages([HumanMessage(text) for _ in range(n)])


# ---------------------------------------------------------------- LangGraph

class LangGraphStore:
    name = "LangGraph DynamoDBSaver"
    how = ("langgraph-checkpoint-aws's DynamoDBSaver under a one-node StateGraph(MessagesState) that adds no "
           "message: append = invoke({'messages': [HumanMessage]}) on the conversation's thread_id (default "
           "durability); history = get_state(config).values['messages']")
    table = "langgraph-checkpoints"

    def __init__(self) -> None:
        def load() -> None:
            from langgraph.graph import MessagesState, StateGraph  # noqa: F401
            from langgraph_checkpoint_aws import DynamoDBSaver  # noqa: F401

        self.versions = _require(load, ("langgraph", "langgraph-checkpoint-aws", "langchain-core"))

    def start(self) -> None:
        _create_table(self.table, "PK", "SK")  # the saver's unified table (its README: PK, SK strings)

    def tables(self) -> list[str]:
        return [self.table]

    def new_conversation(self) -> str:
        return f"thread-{random.getrandbits(48):x}"

    def writer(self, conversation: str) -> Writer:
        return _LangGraphWriter(self.table, conversation)

    concurrent_writer = writer


class _LangGraphWriter:
    def __init__(self, table: str, conversation: str) -> None:
        from langgraph.graph import END, START, MessagesState, StateGraph
        from langgraph_checkpoint_aws import DynamoDBSaver

        self.saver = DynamoDBSaver(table_name=table, region_name=REGION)
        graph = StateGraph(MessagesState)
        graph.add_node("turn", lambda state: {})  # no model: the turn only stores the message
        graph.add_edge(START, "turn")
        graph.add_edge("turn", END)
        self.app = graph.compile(checkpointer=self.saver)
        self.config = {"configurable": {"thread_id": conversation}}

    def clients(self) -> list[Any]:
        return [self.saver.client]

    def append(self, text: str) -> None:
        from langchain_core.messages import HumanMessage

        self.app.invoke({"messages": [HumanMessage(text)]}, self.config)

    def history(self) -> list[str]:
        return [m.content for m in self.app.get_state(self.config).values.get("messages", [])]

    def newest(self, n: int) -> list[str]:
        return self.history()[-n:]  # the state is one checkpoint: the last n cost the whole read

    def seed(self, text: str, n: int, chunk: int = 100) -> None:
        from langchain_core.messages import HumanMessage

        for start in range(0, n, chunk):
            self.app.invoke({"messages": [HumanMessage(text) for _ in range(min(chunk, n - start))]}, self.config)


# ---------------------------------------------------------------- the floor

class PlainStore:
    name = "plain table (floor)"
    how = ("bench/plain_store.py: append = PutItem of one item; history = Query by session (1 MB pages); newest "
           "n = one Query, Limit n, newest first")
    table = "plain-chat"

    def start(self) -> None:
        from bench.plain_store import create_table

        create_table(boto3.client("dynamodb", region_name=REGION), self.table)

    def tables(self) -> list[str]:
        return [self.table]

    def new_conversation(self) -> str:
        return f"{random.getrandbits(48):x}"

    def writer(self, conversation: str) -> Writer:
        return _PlainWriter(self.table, conversation)

    concurrent_writer = writer


class _PlainWriter(_OneByOne):
    def __init__(self, table: str, conversation: str) -> None:
        from bench.plain_store import PlainChatHistory

        self.store = PlainChatHistory(boto3.client("dynamodb", region_name=REGION), table, conversation)

    def clients(self) -> list[Any]:
        return [self.store.client]

    def append(self, text: str) -> None:
        self.store.append("user", text)

    def history(self) -> list[str]:
        return [m["content"] for m in self.store.history()]

    def newest(self, n: int) -> list[str]:
        return [m["content"] for m in self.store.history(newest=n)]


PEERS: tuple[type, ...] = (LangChainStore, LangGraphStore)
