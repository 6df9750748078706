"""Section "local-runtime": `chatkeep dev` itself, per placement (docs/local-runtime.md). For each mode,
`--inline` (everything in one interpreter, as every mode was before issue 20) and the default (moto in a process of
its own, each function's invocations in execution environments: worker processes), on the real template.yaml:

1. start to the first 200 of `GET /openapi.json` (median of a few starts);
2. REST posts/s with 16 concurrent clients for a fixed duration;
3. the stream's lag when the load ends: records not yet delivered at the last post (delivered after it, as the
   poller's counters in /_local/health count them), and the seconds from the last post until
   `POST /_local/stream/drain` returns (goal: 10 s); the stream batches' durations under the load, from the log.

    python -m bench --only local-runtime [--quick]
"""

from __future__ import annotations

import re
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import ROOT, print_table

MODES = (("--inline (one interpreter)", ["--inline"]), ("default (environments, moto process)", []))
CLIENTS = 16
SESSIONS = 20
DRAIN_GOAL_S = 10.0
DRAIN_TIMEOUT_S = 300.0
QUICK = {"starts": 1, "seconds": 3.0}
FULL = {"starts": 3, "seconds": 20.0}


def _delivered(api: Any) -> int:
    stream = api.health()["stream"]
    return int(stream.get("records_succeeded", 0)) + int(stream.get("records_dead", 0))


def _started(extra: list[str], log: Path) -> tuple[Any, float]:
    """A running `chatkeep dev` and the seconds from its launch to the first 200 of GET /openapi.json."""
    import requests
    from chatkeep_local.testing import LocalApiProcess

    api = LocalApiProcess(ROOT / "template.yaml", cwd=ROOT, log_path=log, extra_args=extra,
                          env={"POWERTOOLS_LOG_LEVEL": "WARNING"})
    first_200: list[float] = []
    launched = time.perf_counter()

    def poll() -> None:
        deadline = launched + 120
        while time.perf_counter() < deadline:
            try:
                if requests.get(f"{api.base_url}/openapi.json", timeout=5).status_code == 200:
                    first_200.append(time.perf_counter() - launched)
                    return
            except requests.RequestException:
                pass
            time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    api.start(timeout=120)
    poller.join(timeout=120)
    if not first_200:
        api.stop()
        raise RuntimeError(f"GET /openapi.json never answered 200:\n{api.log_tail()}")
    return api, first_200[0]


def _load(api: Any, seconds: float) -> dict[str, Any]:
    import requests

    token = api.token("bench-load", f"bench-rt-{uuid.uuid4().hex[:6]}", name="Bench")
    channel = api.request("POST", "/v1/channels", token, json={}).json()["id"]
    sessions = [api.request("POST", f"/v1/channels/{channel}/sessions", token, json={}).json()["id"]
                for _ in range(SESSIONS)]
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + seconds
    counts = {"posted": 0, "refused": 0}
    last_post = [0.0]
    lock = threading.Lock()

    def client(n: int) -> None:
        http = requests.Session()
        i = 0
        while time.monotonic() < deadline:
            url = f"{api.base_url}/v1/sessions/{sessions[(n + i) % SESSIONS]}/messages"
            status = http.post(url, json={"content": f"load c{n} m{i}"}, headers=headers, timeout=60).status_code
            with lock:
                counts["posted" if status == 201 else "refused"] += 1
                last_post[0] = max(last_post[0], time.perf_counter())
            i += 1

    log_start = api.log_path.stat().st_size
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    ended = last_post[0]
    delivered_at_end = _delivered(api)
    drain = api.request("POST", "/_local/stream/drain", json={"timeout": DRAIN_TIMEOUT_S},
                        timeout=DRAIN_TIMEOUT_S + 30)
    drained_after = time.perf_counter() - ended
    behind = _delivered(api) - delivered_at_end
    with api.log_path.open(encoding="utf-8", errors="replace") as log:
        log.seek(log_start)
        batches = [(int(m.group(1)), float(m.group(2)))
                   for m in re.finditer(r"STREAM \S+ (\d+) record\(s\) ([\d.]+)ms", log.read())]
    durations = sorted(ms for _, ms in batches)
    return {"seconds": round(ended - started, 1), "posts": counts["posted"], "refused": counts["refused"],
            "posts_per_s": round(counts["posted"] / (ended - started), 1),
            "behind_at_last_post": behind, "drained": drain.status_code == 200,
            "drained_after_s": round(drained_after, 1),
            "batches": len(batches), "records_per_batch": round(statistics.fmean(n for n, _ in batches), 1)
            if batches else 0,
            "batch_p50_ms": round(statistics.median(durations), 1) if durations else None,
            "batch_p95_ms": round(durations[int(0.95 * (len(durations) - 1))], 1) if durations else None}


def run_mode(extra: list[str], starts: int, seconds: float, logs: Path) -> dict[str, Any]:
    times = []
    for n in range(starts):
        api, first_200 = _started(extra, logs / f"dev-{'-'.join(extra) or 'default'}-{n}.log")
        times.append(first_200)
        if n < starts - 1:
            api.stop()
    try:
        return {"start_s": round(statistics.median(times), 2), "starts": [round(t, 2) for t in times],
                **_load(api, seconds)}
    finally:
        api.stop()


def local_runtime_section(quick: bool = False, *, seconds: float | None = None, starts: int | None = None,
                          modes: tuple[tuple[str, list[str]], ...] = MODES) -> dict[str, Any]:
    size = QUICK if quick else FULL
    seconds = size["seconds"] if seconds is None else seconds
    starts = size["starts"] if starts is None else starts
    out: dict[str, Any] = {"clients": CLIENTS, "seconds": seconds, "modes": {}}
    rows = []
    with tempfile.TemporaryDirectory() as logs:
        for label, extra in modes:
            r = out["modes"][label] = run_mode(extra, starts, seconds, Path(logs))
            drained = f"{r['drained_after_s']}" if r["drained"] else f"> {DRAIN_TIMEOUT_S:.0f} (not drained)"
            rows.append([label, r["start_s"], r["posts_per_s"], r["refused"], r["behind_at_last_post"], drained,
                         "yes" if r["drained"] and r["drained_after_s"] <= DRAIN_GOAL_S else "no",
                         r["records_per_batch"], r["batch_p50_ms"], r["batch_p95_ms"]])
    out["table"] = print_table(
        f"Local runtime: chatkeep dev under {CLIENTS} clients for {seconds:.0f} s, per placement",
        ["mode", "start to 1st 200 (s)", "posts/s", "non-201", "stream records behind at last post",
         "drained after last post (s)", f"drained <= {DRAIN_GOAL_S:.0f} s", "records/batch", "batch p50 (ms)",
         "batch p95 (ms)"], rows,
        f"Start: launch of `chatkeep dev` to the first 200 of GET /openapi.json, median of {starts} start(s). Posts: "
        f"REST `POST /v1/sessions/{{id}}/messages` from {CLIENTS} clients over {SESSIONS} sessions (201s per "
        "second). Behind: stream records delivered after the last post (the poller's counters). Drained: seconds "
        "from the last post until POST /_local/stream/drain returned. Batches: the stream function's invocations "
        "during the load and the drain, from the runtime's log. --inline: moto, the handlers, the stream poller and "
        "the TTL sweeper in one interpreter; default: see docs/local-runtime.md.")
    return out


if __name__ == "__main__":
    import sys

    local_runtime_section("--quick" in sys.argv)
