"""The load model's cross-check (bench/paper.py): a small workload through the real code over moto, every written
item's key captured, against the same operations replayed through the model's `Recorder`.

The real code: sessions created and messages posted through `ChatService`, agent turns run by `TurnRunner` (a
scripted model whose deltas each cause a content write: `persist_interval=0`), and the chat table's real stream
records fed to the stream processor one record at a time (batches of one: the model counts no coalescing). A
botocore `before-parameter-build` hook on chatkeep's client records the key of each item written by PutItem,
UpdateItem, DeleteItem, BatchWriteItem and TransactWriteItems (ConditionChecks included). Index writes are read
off the writes that cause them, by DynamoDB's rules (the same the model states): a write of an item carrying
`gsi1pk` writes gsi1 at that key (twice when a session update sets `gsi1sk`), a message Put writes lsi1, an index
entry Put writes `by_session` at its `spk`. The item sizes of the model are measured on the items written here."""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

from bench.common import moto_tables, print_table
from bench.paper import BY_SESSION, CHAT, GSI1, IDEMPOTENCY, LSI1, SEARCH, Recorder, _current

MODEL = "amazon.nova-lite-v1:0"
WS = "ws-paper"
TODO = 4242
TITLES = ("Billing question about the March invoice", "Deploy help", "Refund for a double charge")
USER_MESSAGES = ("I was charged twice for the March invoice, could you refund one charge?",
                 "Also the receipt shows the wrong billing address.",
                 "Is the deploy stuck or still running?")
REPLY_DELTAS = (("Thanks for ", "asking: the ", "second charge ", "is refunded ", "within five days."),
                ("The address ", "is updated."))
CAPTURED_OPS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


class WriteCapture:
    """botocore `before-parameter-build.dynamodb.*`: (table, key attributes, item or expression) per write."""

    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        op = model.name
        if op not in CAPTURED_OPS:
            return
        if op == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for r in requests:
                    if "PutRequest" in r:
                        self.writes.append({"table": table, "item": r["PutRequest"]["Item"], "kind": "Put"})
                    else:
                        self.writes.append({"table": table, "item": r["DeleteRequest"]["Key"], "kind": "Delete"})
        elif op == "TransactWriteItems":
            for entry in params["TransactItems"]:
                (kind, body), = entry.items()
                self.writes.append({"table": body["TableName"], "item": body.get("Item") or body["Key"],
                                    "kind": kind, "expression": body.get("UpdateExpression", "")})
        else:
            self.writes.append({"table": params["TableName"], "item": params.get("Item") or params["Key"],
                                "kind": op.removesuffix("Item"), "expression": params.get("UpdateExpression", "")})


def counted_writes(capture: WriteCapture, tables: dict[str, str], gsi1_of: dict[str, str]) -> Counter[tuple[str, str]]:
    """Writes per (table or index, partition key): the captured ones and the index writes they cause.
    `gsi1_of`: the gsi1 key of every item that has one (by its pk|sk)."""
    out: Counter[tuple[str, str]] = Counter()
    for w in capture.writes:
        table, item = tables[w["table"]], w["item"]
        pk, sk = item["pk"]["S"] if "pk" in item else item["id"]["S"], item.get("sk", {}).get("S", "")
        out[(table, pk if table != IDEMPOTENCY else "idempotency")] += 1
        if table == CHAT and w["kind"] != "ConditionCheck":
            gpk = item["gsi1pk"]["S"] if "gsi1pk" in item else gsi1_of.get(f"{pk}|{sk}")
            if gpk:
                moves = sk == "S" and w["kind"] == "Update" and "gsi1sk =" in w.get("expression", "")
                out[(GSI1, gpk)] += 2 if moves else 1
            if w["kind"] == "Put" and "lsi1sk" in item:
                out[(LSI1, pk)] += 1
        if table == SEARCH and w["kind"] == "Put":
            out[(BY_SESSION, item["spk"]["S"])] += 1
    return out


class _Model:
    """A scripted ConverseStream: each delta an event, then the end and the usage."""

    def __init__(self, deltas: tuple[str, ...]) -> None:
        self.deltas = deltas

    def stream(self, request: dict[str, Any]) -> Any:
        from chatkeep.agents.model import ModelStream

        events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
        events += [{"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": d}}} for d in self.deltas]
        events += [{"contentBlockStop": {"contentBlockIndex": 0}}, {"messageStop": {"stopReason": "end_turn"}},
                   {"metadata": {"usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29},
                                 "metrics": {"latencyMs": 5}}}]
        return ModelStream({"stream": events})


def run() -> dict[str, Any]:
    """The small workload, the counted writes, the model's, and the item sizes measured on the way."""
    from bench.cost import item_size

    saved = {k: os.environ.get(k) for k in ("TURN_QUEUE_URL", "ALLOWED_MODEL_IDS", "DAILY_TOKEN_QUOTA",
                                            "POWERTOOLS_METRICS_DISABLED")}
    try:
        with moto_tables() as client:
            return _run(client, item_size)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run(client: Any, item_size: Any) -> dict[str, Any]:
    import boto3
    from chatkeep import aws
    from chatkeep import settings as settings_module
    from chatkeep.agents.runner import TurnRunner
    from chatkeep.auth import Principal
    from chatkeep.repository import keys
    from chatkeep.repository.dynamodb import DynamoDBChatRepository
    from chatkeep.repository.turn_store import TurnStore
    from chatkeep.service import ChatService
    from chatkeep.stream import processor
    from chatkeep_local.harness import reset_caches
    from chatkeep_local.stream_reader import StreamReader

    os.environ["TURN_QUEUE_URL"] = boto3.client("sqs", region_name="us-east-1").create_queue(
        QueueName="paper-turns")["QueueUrl"]
    os.environ.update({"ALLOWED_MODEL_IDS": MODEL, "DAILY_TOKEN_QUOTA": "1000000",
                       "POWERTOOLS_METRICS_DISABLED": "true"})
    settings_module.reset()
    reset_caches()
    settings = settings_module.get_settings()
    ddb = aws.dynamodb()
    repo = DynamoDBChatRepository()
    service = ChatService(repo)
    user = Principal(sub="alice", workspace_id=WS, name="Alice", scopes=frozenset(), is_service=False)
    bot = Principal(sub="ops", workspace_id=WS, name="Ops", scopes=frozenset({"chatkeep/service"}), is_service=True)
    agent = service.create_agent(bot, slug="helper", name="Helper", provider="bedrock", model=MODEL)
    reader = StreamReader(settings.chat_table_name, dynamodb_client=ddb)
    processor.reset()

    def settle() -> None:
        for _ in range(4):
            records = reader.read_new()
            if not records:
                return
            for record in records:  # batches of one record: no coalescing, as the model counts
                result = processor.handle({"Records": [record]}, None)
                assert not result["batchItemFailures"], result

    settle()
    capture = WriteCapture()
    ddb.meta.events.register("before-parameter-build.dynamodb.*", capture)
    model = Recorder(_current())
    runner_store = TurnStore()
    try:
        sids = []
        for i, title in enumerate(TITLES):
            managed = i != 1
            session = service.create_session(user, TODO, title=title, agent_id=agent.id if managed else None)
            sids.append(session.id)
            model.create_session(WS, TODO, session.id, title, agent_id=agent.id if managed else None)
            settle()
        replies = iter(REPLY_DELTAS)
        for sid, text in ((sids[0], USER_MESSAGES[0]), (sids[1], USER_MESSAGES[2]), (sids[2], USER_MESSAGES[1])):
            message, after = service.post_message(user, sid, content=text)
            model.post(WS, TODO, sid, message.id, text)
            settle()
            if after.turn is None:
                continue
            deltas = next(replies)
            runner = TurnRunner(store=runner_store, agents=repo, model=_Model(deltas), settings=settings,
                                sleep=lambda _s: None, persist_interval=0)
            result = runner.run(WS, sid, after.turn.id, worker="paper")
            assert result.outcome == "complete", result
            assert result.reply_id is not None
            model.turn(WS, TODO, sid, result.reply_id, deltas[0], "".join(deltas), persists=len(deltas) - 1,
                       quota=True)
            settle()
    finally:
        ddb.meta.events.unregister("before-parameter-build.dynamodb.*", capture)

    tables = {settings.chat_table_name: CHAT, settings.search_table_name: SEARCH,
              settings.idempotency_table_name: IDEMPOTENCY}
    items = client.scan(TableName=settings.chat_table_name)["Items"]
    gsi1_of = {f"{i['pk']['S']}|{i['sk']['S']}": i["gsi1pk"]["S"] for i in items if "gsi1pk" in i}
    counted = counted_writes(capture, tables, gsi1_of)
    modelled = {k: round(v, 6) for k, v in model.load.write_counts().items()}

    def largest(kind: str) -> int:
        return max(item_size(i) for i in items if i.get("type", {}).get("S") == kind)

    message_overhead = max(item_size(i) - len(i.get("content", {}).get("S", "").encode())
                           for i in items if i.get("type", {}).get("S") == "message")
    index_items = client.scan(TableName=settings.search_table_name)["Items"]
    sizes = {"session": largest("session"), "container": largest("container"), "message": message_overhead,
             "claim": largest("message_claim"), "usage": largest("usage"), "agent": largest("agent"),
             "index_entry": max(item_size(i) for i in index_items)}
    session_pks = {keys.session_pk(WS, s) for s in sids}
    return {"counted": dict(counted), "modelled": modelled, "sizes": sizes,
            "summary": _summary(counted, modelled, session_pks),
            "table": _table(counted, modelled, session_pks)}


FAMILIES = ((r"#I#", "index shard"), (r"#C#\d+#A#", "activity shard"), (r"#USAGE", "usage"),
            (r"#MID#", "message id claim"), (r"#C#\d+$", "container"), (r"#A#\d+$", "agent"))


def _family(target: str, pk: str, session_pks: set[str]) -> str:
    """The key's kind, for the table: one row per (table or index, kind of key)."""
    if pk in session_pks:
        return "session"
    return next((name for pattern, name in FAMILIES if re.search(pattern, pk)), pk)


def _grouped(counts: dict[tuple[str, str], float], session_pks: set[str]) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for (target, pk), n in counts.items():
        out[(target, _family(target, pk, session_pks))] += n
    return out


def _summary(counted: Counter[tuple[str, str]], modelled: dict[tuple[str, str], float],
             session_pks: set[str]) -> dict[str, Any]:
    keys_all = set(counted) | set(modelled)
    differing = sorted(k for k in keys_all if counted.get(k, 0) != modelled.get(k, 0))
    return {"keys": len(keys_all), "writes": sum(counted.values()), "differing_keys": [list(k) for k in differing]}


def _table(counted: Counter[tuple[str, str]], modelled: dict[tuple[str, str], float], session_pks: set[str]) -> str:
    c, m = _grouped(counted, session_pks), _grouped(modelled, session_pks)
    per_key_c = Counter((t, _family(t, pk, session_pks)) for (t, pk) in counted)
    rows = [[target, family, per_key_c[(target, family)], c.get((target, family), 0), round(m.get((target, family), 0)),
             "yes" if all(counted.get(k, 0) == modelled.get(k, 0) for k in set(counted) | set(modelled)
                          if k[0] == target and _family(k[0], k[1], session_pks) == family) else "NO"]
            for target, family in sorted(set(c) | set(m))]
    return print_table("Scale on paper: the model against the code (moto, 3 sessions, 3 posts, 2 agent turns)",
                       ["table / index", "keys of kind", "keys", "writes counted", "writes modelled",
                        "equal per key"], rows,
                       "counted: items the real code wrote (botocore hook) and the index writes they cause; "
                       "modelled: bench/paper.py's Recorder for the same operations. "
                       "tests/integration/test_paper_model.py asserts equality key by key.")
