"""Section 1: cold start. Each function's handler module imported by a fresh interpreter as Lambda's init
does (sys.path = CodeUri + the layer, the environment the template sets), interleaved round by round with
a baseline interpreter that only imports boto3 and creates a DynamoDB client. Then the first request
(DynamoDB answered by canned HTTP bodies, so boto3's import and client creation, which the handlers defer
to the first request, are counted there) and a second one."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from typing import Any

from bench.common import ROOT, claims_for, http_event, median, print_table

CHILD = ROOT / "bench" / "cold_child.py"
FUNCTIONS = {  # logical id -> (CodeUri, the first request it serves)
    "GraphqlApiFunction": "functions/graphql_api",
    "RestApiFunction": "functions/rest_api",
    "StreamProcessorFunction": "functions/stream_processor",
    "AgentTurnFunction": "functions/agent_turn",
}
API_FUNCTIONS = {"GraphqlApiFunction", "RestApiFunction"}


def template_environment() -> dict[str, str]:
    """Globals.Function.Environment of template.yaml with parameter defaults (tracing off) and table refs."""
    from chatkeep_local.template import load_template

    template = load_template(ROOT / "template.yaml")
    params = {k: v.get("Default") for k, v in (template.get("Parameters") or {}).items()}
    env: dict[str, str] = {}
    for name, value in template["Globals"]["Function"]["Environment"]["Variables"].items():
        if isinstance(value, dict) and "Ref" in value:
            value = params.get(value["Ref"], value["Ref"])
        elif isinstance(value, dict) and "Fn::If" in value:
            value = value["Fn::If"][2]  # conditions off (TracingOn false): the default deployment
        env[name] = str(value)
    return env


def _session_fixture() -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    from chatkeep import clock
    from chatkeep.models import Message, Role, Session
    from chatkeep.repository import keys
    from chatkeep.repository.codec import to_item
    from chatkeep.repository.items import session_to_item

    now = clock.now()
    stamp = clock.iso(now)
    sid = 123456
    session = Session(id=sid, workspace_id="ws1", container_id=12345, owner="alice", created_at=stamp,
                      updated_at=stamp, last_activity_at=stamp, idle_timeout=86400, expires_at_epoch=int(now) + 86400,
                      title="Customer Support", purge_at=int(now) + 86400 * 31)
    item = session_to_item(session)
    messages = []
    for i in range(5):
        m = Message(id=1000 + i, workspace_id="ws1", session_id=sid, container_id=12345, content=f"message {i}",
                    role=Role.USER, created_at=stamp, sender_sub="alice", sender_name="Alice")
        messages.append(to_item({"pk": keys.session_pk("ws1", sid), "sk": keys.message_sk(stamp, m.id),
                                 "type": "message", "ws": "ws1", "sid": sid, "cid": 12345, "mid": m.id,
                                 "content": m.content, "role": "user", "sender_sub": "alice",
                                 "sender_name": "Alice", "created_at": stamp}))
    return item, messages, sid


def specs(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    from chatkeep import ids

    from bench.ops import GET_SESSION

    item, messages, sid = _session_fixture()
    table = env["CHAT_TABLE_NAME"]
    query_items = [item, *reversed(messages)]
    responses = {
        "Query": json.dumps({"Items": query_items, "Count": len(query_items), "ScannedCount": len(query_items)}),
        "BatchGetItem": json.dumps({"Responses": {table: [item]}, "UnprocessedKeys": {}}),
        "GetItem": json.dumps({"Item": item}),
    }
    layer = str(ROOT / "layers" / "common")
    gql_event = http_event("POST", "/graphql", body={"query": GET_SESSION, "variables": {"sessionId": sid}},
                           claims=claims_for("alice"))
    rest_event = http_event("GET", f"/v1/sessions/{ids.encode(ids.Kind.SESSION, sid)}", claims=claims_for("alice"),
                            route_key="GET /v1/sessions/{session_id}")
    out: dict[str, dict[str, Any]] = {"baseline (boto3 + DynamoDB client)": {"kind": "baseline", "paths": [],
                                                                          "responses": responses}}
    first = {"GraphqlApiFunction": gql_event, "RestApiFunction": rest_event, "StreamProcessorFunction": None,
             "AgentTurnFunction": None}
    for logical_id, code_uri in FUNCTIONS.items():
        if not (ROOT / code_uri / "app.py").exists():
            continue
        out[logical_id] = {"kind": "handler", "module": "app", "paths": [str(ROOT / code_uri), layer],
                           "event": first[logical_id], "responses": responses}
    return out


def run_child(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(CHILD), json.dumps(spec)], env=env, capture_output=True, text=True,
                          timeout=120, cwd="/")
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"cold-start child failed ({proc.returncode}): {proc.stderr[-2000:] or proc.stdout[-2000:]}")


def child_environment(env: dict[str, str], init_type: str) -> dict[str, str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": "UTC",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": "chatkeep", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13", "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return {**base, **env}


def _verdict(name: str, ratio: float, api: bool) -> str:
    if not api:
        return "-"
    if "snap-start" in name:
        return "n/a (snapshotted)"  # SnapStart restores init from the snapshot: it is off the request path
    return "yes" if ratio <= 1.5 else "NO"


def run(rounds: int = 15) -> dict[str, Any]:
    env = template_environment()
    variants: list[tuple[str, dict[str, Any], str]] = []
    for name, spec in specs(env).items():
        variants.append((name, spec, "on-demand"))
        if name in API_FUNCTIONS:
            variants.append((f"{name} (snap-start init)", spec, "snap-start"))
    missing = [f for f, uri in FUNCTIONS.items() if not (ROOT / uri / "app.py").exists()]
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    rng = random.Random(1)
    for spec_name, spec, init_type in variants:  # warm the OS file cache and the .pyc files once
        run_child(spec, child_environment(env, init_type))
        del spec_name
    for _ in range(rounds):
        order = list(variants)
        rng.shuffle(order)
        for name, spec, init_type in order:
            samples[name].append(run_child(spec, child_environment(env, init_type)))

    def med(name: str, key: str, index: int | slice) -> float:
        values = []
        for s in samples[name]:
            part = s[key][index]
            values.append(sum(part) if isinstance(part, list) else part)
        return median(values)

    base = "baseline (boto3 + DynamoDB client)"
    base_init_cpu, base_init_wall = med(base, "cpu", 0), med(base, "wall", 0)
    base_total_cpu = med(base, "cpu", slice(0, 2))
    rows, result = [], {"rounds": rounds, "missing": missing, "functions": {}}
    for name, _, _ in variants:
        init_cpu, init_wall = med(name, "cpu", 0), med(name, "wall", 0)
        first_cpu = med(name, "cpu", 1)
        total_cpu = med(name, "cpu", slice(0, 2))
        warm_cpu = med(name, "cpu", 2)
        entry = {
            "init_cpu_ms": init_cpu, "init_wall_ms": init_wall, "first_request_cpu_ms": first_cpu,
            "init_plus_first_cpu_ms": total_cpu, "second_request_cpu_ms": warm_cpu,
            "init_ratio": init_cpu / base_init_cpu, "init_wall_ratio": init_wall / base_init_wall,
            "init_plus_first_ratio": total_cpu / base_total_cpu,
            "modules": samples[name][-1]["modules"],
        }
        result["functions"][name] = entry
        api = name.split(" ")[0] in API_FUNCTIONS
        rows.append([name, init_cpu, init_wall, entry["init_ratio"], first_cpu, total_cpu,
                     entry["init_plus_first_ratio"], warm_cpu, entry["modules"],
                     _verdict(name, entry["init_ratio"], api)])
    note = (f"{rounds} interleaved rounds (random order per round), medians. CPU = time.process_time() of the fresh "
            "interpreter, wall = perf_counter(); ratios are CPU medians over the baseline's (init: import + client; "
            "init + first: + one GetItem). First request: DynamoDB answered by canned HTTP bodies.")
    if missing:
        note += f" Skipped (no functions/<name>/app.py yet): {', '.join(missing)}."
    result["table"] = print_table(
        "Cold start (fresh interpreter, ms)",
        ["function", "init CPU", "init wall", "init / base", "1st req CPU", "init+1st CPU", "init+1st / base",
         "2nd req CPU", "modules", "init <= 1.5x"],
        rows, note)
    return result


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
