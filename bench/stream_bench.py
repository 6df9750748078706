"""Stream processor benchmark: records/second through the handler and DynamoDB write requests per batch.

    python -m bench.stream_bench            (prints a table; writes bench/results/stream.json)

Each scenario creates sessions through the service layer and writes messages (the items and records of
ChatService.post_message) into moto (tables from template.yaml), reads
the chat table's REAL stream records, then feeds them to the Lambda handler in batches of 100 (the
event source mapping's BatchSize). DynamoDB requests are counted at the botocore layer with a
`before-call.dynamodb.*` hook on the client the handler uses. The point: writes grow with the sessions
and distinct words a batch touches, not with its records. "naive" is what a per-record handler would
send (one UpdateItem per message + one BatchWriteItem per 25 words of that message).
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _sub in ("layers/common", "local"):
    if str(ROOT / _sub) not in sys.path:
        sys.path.insert(0, str(ROOT / _sub))
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "CHAT_TABLE_NAME": "ChatTable", "SEARCH_TABLE_NAME": "SearchIndexTable",
    "IDEMPOTENCY_TABLE_NAME": "IdempotencyTable",
    "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING",
})
os.environ.pop("DYNAMODB_ENDPOINT_URL", None)

BATCH_SIZE = 100
WRITE_OPS = {"BatchWriteItem", "UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems"}
VOCABULARY = [
    "deploy", "review", "budget", "report", "customer", "invoice", "meeting", "schedule", "release",
    "incident", "feature", "design", "testing", "roadmap", "hiring", "support", "contract", "pricing",
    "launch", "metrics",
]


class Calls:
    """botocore before-call hook: DynamoDB operations by name."""

    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()

    def __call__(self, model: Any = None, **_: Any) -> None:
        self.ops[model.name] += 1

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.ops.items() if op in WRITE_OPS)


def message_text(rng: random.Random, n: int, unique_words: bool) -> str:
    words = rng.sample(VOCABULARY, 5)
    if unique_words:
        words += [f"term{n}x{k}" for k in range(3)]
    return " ".join(words)


def post(client: Any, table: str, ws: str, sid: int, cid: int, mid: int, content: str) -> None:
    """The items and stream records of ChatService.post_message (session MODIFY, message INSERT, claim
    INSERT) written without TransactWriteItems: moto deep-copies the whole table, stream included, on
    every transaction, which makes a long setup quadratic (a moto artefact, not DynamoDB's cost)."""
    from chatkeep import clock
    from chatkeep.repository import keys
    from chatkeep.repository.codec import to_av, to_item

    at = clock.iso(clock.now())
    msk = keys.message_sk(at, mid)
    client.update_item(
        TableName=table, Key={"pk": to_av(keys.session_pk(ws, sid)), "sk": to_av("S")},
        UpdateExpression="SET last_activity_at = :at, updated_at = :at, gsi1sk = :g",
        ExpressionAttributeValues={":at": to_av(at), ":g": to_av(keys.activity_sk(at, sid))})
    client.put_item(TableName=table, Item=to_item({
        "pk": keys.session_pk(ws, sid), "sk": msk, "lsi1sk": keys.message_lsi_sk(mid), "type": "message",
        "ws": ws, "sid": sid, "cid": cid, "mid": mid, "content": content, "role": "user",
        "sender_sub": "bench", "created_at": at}))
    client.put_item(TableName=table, Item=to_item({
        "pk": keys.message_claim_pk(ws, mid), "sk": keys.CLAIM_SK, "type": "message_claim", "ws": ws,
        "sid": sid, "msk": msk}))


def run_scenario(name: str, messages: int, sessions: int, unique_words: bool, seed: int = 7) -> dict[str, Any]:
    from chatkeep import aws, text
    from chatkeep.auth import Principal
    from chatkeep.repository import keys
    from chatkeep.repository.codec import from_item, to_av
    from chatkeep.repository.dynamodb import DynamoDBChatRepository
    from chatkeep.service import ChatService
    from chatkeep.settings import get_settings
    from chatkeep.stream import processor as stream_processor
    from chatkeep_local.harness import reset_caches
    from chatkeep_local.stream_reader import StreamReader
    from chatkeep_local.template import create_tables, load_template
    from moto import mock_aws

    rng = random.Random(seed)
    reset_caches()
    with mock_aws():
        client = aws.dynamodb()
        create_tables(client, load_template(ROOT / "template.yaml"))
        settings = get_settings()
        service = ChatService(DynamoDBChatRepository())
        user = Principal(sub="bench", workspace_id="wsb", name="Bench", scopes=frozenset(), is_service=False)
        sids = [service.create_session(user, 1000 + i % 3, title=f"Session {i} planning").id
                for i in range(sessions)]
        reader = StreamReader(settings.chat_table_name)
        reader.read_new()  # session INSERTs are not part of the measured stream
        naive_writes = 0
        pairs: set[tuple[int, str]] = set()
        cids = {s: 1000 + i % 3 for i, s in enumerate(sids)}
        for n in range(messages):
            sid = sids[n % sessions]
            content = message_text(rng, n, unique_words)
            post(client, settings.chat_table_name, "wsb", sid, cids[sid], 10_000 + n, content)
            words = text.words(content)
            pairs.update((sid, w) for w in words)
            naive_writes += 1 + math.ceil(len(words) / 25)
        records = reader.read_new()

        calls = Calls()
        client.meta.events.register("before-call.dynamodb.*", calls)
        per_batch: list[int] = []
        failures = 0
        started = time.perf_counter()
        for start in range(0, len(records), BATCH_SIZE):
            before = calls.writes
            response = stream_processor.handle({"Records": records[start : start + BATCH_SIZE]}, None)
            failures += len(response["batchItemFailures"])
            per_batch.append(calls.writes - before)
        elapsed = time.perf_counter() - started
        ops = dict(calls.ops)

        # the handler's own count updates come back as MODIFY records: they must cost no writes
        echo = reader.read_new()
        before = calls.writes
        for start in range(0, len(echo), BATCH_SIZE):
            stream_processor.handle({"Records": echo[start : start + BATCH_SIZE]}, None)
        echo_writes = calls.writes - before
        client.meta.events.unregister("before-call.dynamodb.*", calls)

        counted = 0
        for sid in sids:
            item = client.get_item(TableName=settings.chat_table_name,
                                   Key={"pk": to_av(keys.session_pk("wsb", sid)), "sk": to_av("S")})["Item"]
            counted += from_item(item).get("message_count", 0)
    reset_caches()
    writes = sum(per_batch)
    return {
        "scenario": name,
        "messages": messages,
        "sessions": sessions,
        "distinct_session_words": len(pairs),
        "records": len(records),
        "batches": len(per_batch),
        "records_per_second": round(len(records) / elapsed, 1),
        "handler_seconds": round(elapsed, 3),
        "write_requests": writes,
        "write_requests_per_batch": round(writes / max(1, len(per_batch)), 1),
        "max_write_requests_per_batch": max(per_batch, default=0),
        "naive_per_record_writes": naive_writes,
        "ops": ops,
        "echo_records": len(echo),
        "echo_write_requests": echo_writes,
        "message_count_total": counted,
        "count_exact": counted == messages,
        "batch_item_failures": failures,
    }


SCENARIOS = [
    ("1000 msgs / 10 sessions / 20-word vocabulary", 1000, 10, False),
    ("100 msgs / 10 sessions / 20-word vocabulary", 100, 10, False),
    ("1000 msgs / 10 sessions / +3 unique words each", 1000, 10, True),
    ("1000 msgs / 100 sessions / 20-word vocabulary", 1000, 100, False),
]


def main() -> int:
    results = []
    for name, messages, sessions, unique in SCENARIOS:
        print(f"running: {name} ...", file=sys.stderr, flush=True)
        results.append(run_scenario(name, messages, sessions, unique))
    header = (f"{'scenario':48} {'records':>7} {'sess':>4} {'words':>6} {'rec/s':>7} "
              f"{'writes':>6} {'w/batch':>7} {'max':>4} {'naive':>6} {'exact':>5}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['scenario']:48} {r['records']:>7} {r['sessions']:>4} {r['distinct_session_words']:>6} "
              f"{r['records_per_second']:>7} {r['write_requests']:>6} {r['write_requests_per_batch']:>7} "
              f"{r['max_write_requests_per_batch']:>4} {r['naive_per_record_writes']:>6} "
              f"{'yes' if r['count_exact'] else 'NO':>5}")
    print("\nwrites: DynamoDB write requests sent by the handler (UpdateItem + BatchWriteItem + ...);"
          " naive: a per-record handler's writes; words: distinct (session, word) pairs;"
          " rec/s: stream records through the handler against in-process moto")
    print("echo (the handler's own count MODIFYs fed back): "
          + ", ".join(f"{r['echo_records']} records -> {r['echo_write_requests']} writes" for r in results))
    out = ROOT / "bench" / "results" / "stream.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"batch_size": BATCH_SIZE, "scenarios": results}, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")
    return 0 if all(r["count_exact"] and not r["batch_item_failures"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
