"""Section "agents": what chatkeep adds to an agent turn (docs/agents.md, bench/README.md).

- Time to first token: the worker's first token (from the start of its run: take the turn, read the agent,
  the turn's message and the history) against the same stand-in model called directly with boto3 (from the
  call to its first delta). Warm path: both clients built, moto answering DynamoDB in-process. Queue delivery
  (stream processor -> SQS -> worker) is not in it; `chatkeep dev`'s delivery is measured separately below.
- DynamoDB writes per reply as the reply's streaming time grows (goal: at most 3 + one per second).
- Cost per 1,000 turns, model tokens excluded, at today's prices (bench/cost.py's rates).

The stand-in model (chatkeep_local.bedrock_standin) is served on a loopback port; chunk delays set the reply's
duration. Numbers are medians over rounds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import RequestCounter, median, moto_tables, print_table

MODEL = "amazon.nova-lite-v1:0"
SQS_PER_MILLION = 0.40  # standard queue requests, us-east-1
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def _direct_first_token(rounds: int) -> list[float]:
    """The worker's own cached client and the request shape it sends, without chatkeep around it."""
    from chatkeep import aws

    client = aws.bedrock_runtime()
    request = {"modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "hello"}]}],
               "system": [{"text": "Be brief."}], "inferenceConfig": {"maxTokens": 1024}}
    out = []
    for _ in range(rounds + 1):
        started = time.perf_counter()
        stream = client.converse_stream(**request)["stream"]
        for event in stream:
            if "contentBlockDelta" in event:
                out.append((time.perf_counter() - started) * 1000)
                break
        for _event in stream:  # read to the end, as the worker does
            pass
    return out[1:]  # the first call builds the connection


def _setup_turns(counter: RequestCounter) -> Any:
    import os

    os.environ["ALLOWED_MODEL_IDS"] = MODEL
    from chatkeep import aws
    from chatkeep import settings as settings_module
    from chatkeep.agents.model import BedrockModel
    from chatkeep.agents.runner import TurnRunner
    from chatkeep.repository.dynamodb import DynamoDBChatRepository
    from chatkeep.repository.turn_store import TurnStore
    from chatkeep.service import ChatService
    from chatkeep.settings import get_settings

    settings_module.reset()
    aws.dynamodb().meta.events.register("before-call.dynamodb.*", counter)
    repo = DynamoDBChatRepository()
    service = ChatService(repo)
    runner = TurnRunner(store=TurnStore(), agents=repo, model=BedrockModel(), settings=get_settings())
    return service, runner


def _principals() -> tuple[Any, Any]:
    from chatkeep.auth import Principal

    user = Principal(sub="alice", workspace_id="bench", name="Alice", scopes=frozenset(), is_service=False)
    bot = Principal(sub="ops", workspace_id="bench", name=None, scopes=frozenset({"chatkeep/service"}),
                    is_service=True)
    return user, bot


def _turn(service: Any, runner: Any, user: Any, agent: Any, counter: RequestCounter, history: int = 4) -> Any:
    session = service.create_session(user, 4242, agent_id=agent.id, initial_context="Plan: Pro")
    sid = session.id
    service.update_session(_principals()[1], sid, agent_id=None)  # history without turns
    for i in range(history):
        service.post_message(user, sid, content=f"earlier message {i}")
    service.update_session(_principals()[1], sid, agent_id=agent.id)
    _, after = service.post_message(user, sid, content="hello")
    counter.reset()
    result = runner.run("bench", sid, after.turn.id, worker="bench")
    writes = sum(n for op, n in counter.calls.items() if op in WRITES)
    reads = counter.total - writes
    return result, writes, reads


@contextmanager
def _standin_turns(config: Any, system_prompt: str | None = None) -> Iterator[tuple[Any, Any, Any, RequestCounter]]:
    """The stand-in served with `config`, moto tables, a runner and a bedrock agent: (service, runner, agent,
    request counter)."""
    import os

    from chatkeep_local.bedrock_standin import StandInModel

    server = StandInModel(config).serve()
    os.environ["BEDROCK_ENDPOINT_URL"] = server.endpoint_url
    try:
        with moto_tables():
            counter = RequestCounter()
            service, runner = _setup_turns(counter)
            agent = service.create_agent(_principals()[1], slug="bench", name="Bench", provider="bedrock",
                                         model=MODEL, system_prompt=system_prompt)
            yield service, runner, agent, counter
    finally:
        server.close()


def agents_section(quick: bool = False) -> dict[str, Any]:
    from chatkeep_local.bedrock_standin import StandInConfig

    rounds = 5 if quick else 15
    out: dict[str, Any] = {}
    tables: list[str] = []
    # 1) time to first token, warm (chunk delay 0: the stand-in answers at once)
    with _standin_turns(StandInConfig(chunk_delay_s=0.0), system_prompt="Be brief.") as (service, runner, agent,
                                                                                          counter):
        user, _ = _principals()
        _turn(service, runner, user, agent, counter)  # warm: clients, connections
        direct = _direct_first_token(rounds)
        ttft, requests_before = [], []
        for _ in range(rounds):
            result, writes, reads = _turn(service, runner, user, agent, counter)
            ttft.append(result.time_to_first_token_ms)
            requests_before.append(reads + 1)  # + the begin write
    added = median(ttft) - median(direct)
    rows = [["stand-in called directly (boto3)", median(direct), "-"],
            ["the worker's first token (take turn + reads + call)", median(ttft), median(requests_before)],
            ["added by chatkeep", added, "goal <= 50 ms: " + ("met" if added <= 50 else "NOT met")]]
    tables.append(print_table("Agent turns: time to first token, warm (ms, median)",
                              ["path", "ms", "DynamoDB requests first"], rows,
                              note="Queue delivery (stream processor -> SQS -> worker) is excluded; see the local "
                                   "delivery figure of `chatkeep dev` in docs/agents.md."))
    out["ttft"] = {"direct_ms": median(direct), "worker_ms": median(ttft), "added_ms": added}

    # 2) writes per reply by reply duration
    durations = (0.5, 2.0) if quick else (0.5, 2.0, 5.0)
    rows, series = [], []
    for seconds in durations:
        chunks = 10  # the stand-in's reply is ~100 characters: at most a few dozen chunks; the delay sets the time
        with _standin_turns(StandInConfig(chunk_delay_s=seconds / chunks, chunks=chunks)) as (service, runner,
                                                                                               agent, counter):
            result, writes, reads = _turn(service, runner, _principals()[0], agent, counter, history=1)
        streamed = result.duration_ms / 1000
        goal = 3 + streamed
        rows.append([f"{seconds:.1f} s reply ({chunks} chunks)", streamed, writes, reads, round(goal, 1),
                     "met" if writes <= goal else "NOT met"])
        series.append({"reply_seconds": seconds, "turn_seconds": streamed, "writes": writes, "reads": reads})
    tables.append(print_table("Agent turns: DynamoDB requests per reply", ["reply", "turn s", "writes", "reads",
                                                              "goal: 3 + 1/s", "goal"], rows,
                note="Writes: take the turn, the reply's first tokens, one persist per second while it grows, "
                     "the end (reply, turn, usage in one transaction)."))
    out["writes_per_reply"] = series

    # 3) cost per 1,000 turns (model tokens excluded)
    from bench.cost import PRICES

    five = series[-1]
    turn_seconds = five["turn_seconds"]
    # Write units: the transactional writes cost 2 WRU per KB per item; a turn's writes touch 2-3 items of ~1 KB.
    wru = (1 + 2 * 3 + 2 * 2 * max(0, five["writes"] - 3) + 2 * 3) * 1000
    rru = (0.5 * five["reads"]) * 1000
    sqs = 3 * 1000 * SQS_PER_MILLION / 1_000_000  # send + receive + delete
    lam = 1000 * (PRICES["lambda_per_million_requests"] / 1_000_000
                  + turn_seconds * PRICES["memory_gb"] * PRICES["lambda_gb_s"])  # 512 MB, waiting on the model
    ddb = (wru * PRICES["wru_per_million"] + rru * PRICES["rru_per_million"]) / 1_000_000
    rows = [["DynamoDB (writes and reads of the turn)", ddb], ["SQS (send, receive, delete)", sqs],
            [f"Lambda worker (512 MB, {turn_seconds:.1f} s per turn)", lam], ["total", ddb + sqs + lam]]
    tables.append(print_table("Agent turns: cost per 1,000 turns, model tokens excluded (USD)", ["part", "USD"],
                [[r[0], f"{r[1]:.4f}"] for r in rows],
                note="The worker's duration is the model's streaming time: Lambda is most of the cost. "
                     "Bedrock tokens are billed by Bedrock on top (per model)."))
    out["cost_per_1000_turns_usd"] = {r[0]: r[1] for r in rows}
    out["table"] = "\n".join(tables)
    return out
