"""`make bench` = `python -m bench`: every section in one run, one table each, written to
bench/results/bench.json and bench/results/bench.md (git-ignored); a full run also writes the figures of record,
bench/RESULTS.md (bench/report.py). How to read them: bench/README.md.

    python -m bench [--quick] [--only cold,requests,overhead,scale,stream,cost,agents,hostile,peers,paper,live,
                                    local-runtime]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

from bench import report as results_report
from bench.common import RESULTS, moto_tables, print_table, quiet

SECTIONS = ("requests", "cold", "overhead", "scale", "stream", "cost", "agents", "hostile", "peers", "paper", "live",
            "local-runtime")
PARTS = RESULTS / "parts"
SECTION_KEYS = {"requests": "requests", "cold": "cold_start", "overhead": "overhead", "scale": "scale",
                "stream": "stream", "cost": "cost", "agents": "agents", "hostile": "hostile", "peers": "peers",
                "paper": "paper", "live": "live", "local-runtime": "local_runtime"}


def _parts() -> dict[str, Any]:
    """Results of the sections already run in their own processes (this run's)."""
    out: dict[str, Any] = {}
    for section, key in SECTION_KEYS.items():
        path = PARTS / f"{section}.json"
        if path.exists():
            out[section] = json.loads(path.read_text()).get(key)
    return out


def _per_process(only: list[str], quick: bool) -> int:
    import shutil
    import subprocess

    shutil.rmtree(PARTS, ignore_errors=True)
    started = time.time()
    status = 0
    for section in [s for s in SECTIONS if s in only]:
        cmd = [sys.executable, "-m", "bench", "--only", section, *(["--quick"] if quick else [])]
        status |= subprocess.run(cmd, check=False).returncode
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                              "python": platform.python_version(), "machine": platform.machine(),
                              "cpus": os.cpu_count(), "quick": quick, "seconds": round(time.time() - started, 1)}
    for section, value in _parts().items():
        report[SECTION_KEYS[section]] = value
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {out} in {report['seconds']} s (one process per section)")
    _write_markdown(report, only, quick)
    return status


def _write_markdown(report: dict[str, Any], only: list[str], quick: bool) -> None:
    full_run = not quick and set(only) == set(SECTIONS)
    for path in results_report.write(report, full_run=full_run):
        print(f"wrote {path}")


def requests_section() -> dict[str, Any]:
    from bench import ops

    rows: list[list[Any]] = []
    out: dict[str, Any] = {}
    above: dict[str, str] = {}  # reason for spending more than the minimum -> its footnote marker
    with moto_tables(), quiet():
        world = ops.World()
        for scenario in ops.scenarios():
            why = scenario.why
            if scenario.above_minimum:  # one footnote per distinct reason
                why += f" ({above.setdefault(scenario.above_minimum, '*' * (len(above) + 1))})"
            used, calls, _ = ops.measure(world, scenario)
            verdict = "-" if scenario.budget is None else ("ok" if used <= scenario.budget else "OVER")
            out[scenario.name] = {"requests": used, "calls": calls, "budget": scenario.budget,
                                  "minimum": scenario.minimum, "why": scenario.why,
                                  "above_minimum": scenario.above_minimum}
            summary = ", ".join(f"{n} {op}" for op, n in sorted(calls.items()))
            rows.append([scenario.name, used, scenario.minimum, scenario.budget, summary, verdict, why])
    notes = [f"({marker}) Above the minimum: {reason}." for reason, marker in above.items()]
    out["table"] = print_table("DynamoDB requests per operation (warm, botocore before-call hook)",
                               ["operation", "requests", "minimum", "budget", "calls", "within", "why the minimum"],
                               rows,
                               "\n\n".join([*notes, "minimum: the fewest requests the data model "
                                           "(docs/architecture.md) answers the operation with. Budget '-': none set "
                                           "(bench/ops.py). tests/integration/test_request_budgets.py fails when an "
                                           "operation goes over its budget, or above its minimum without a reason."]))
    return out


def stream_section() -> dict[str, Any]:
    try:
        from bench import stream_bench
    except ImportError:
        print("\n## Stream\n\nbench/stream_bench.py is not there yet: skipped.")
        return {"skipped": True}
    results = []
    with quiet():
        for name, messages, sessions, unique in stream_bench.SCENARIOS:
            results.append(stream_bench.run_scenario(name, messages, sessions, unique))
    rows = [[r["scenario"], r["records"], r["batches"], r["records_per_second"], r["write_requests"],
             r["write_requests_per_batch"], r["max_write_requests_per_batch"], r["naive_per_record_writes"],
             "yes" if r["count_exact"] else "NO"] for r in results]
    table = print_table("Stream processor (bench/stream_bench.py, batches of 100)",
                        ["scenario", "records", "batches", "records/s (moto)", "writes", "writes/batch",
                         "max/batch", "naive writes", "counts exact"], rows,
                        "writes: DynamoDB write requests the handler sent; naive: what a per-record handler sends.")
    best = max((r["records_per_second"] for r in results), default=0)
    return {"scenarios": results, "records_per_s": min((r["records_per_second"] for r in results), default=best),
            "table": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and sizes (a smoke run)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--in-process", action="store_true",
                        help="run the sections in this process (default: one fresh process per section, so that "
                             "moto's state of one section cannot weigh on the next)")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    if not args.in_process and len(only) > 1:
        return _per_process(only, args.quick)
    started = time.time()
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                              "python": platform.python_version(), "machine": platform.machine(),
                              "cpus": os.cpu_count(), "quick": args.quick}
    print(f"# chatkeep bench ({report['started']}, Python {report['python']}, {report['machine']}, "
          f"{report['cpus']} CPUs)")
    if "requests" in only:
        report["requests"] = requests_section()
    if "cold" in only:
        from bench import cold_start

        report["cold_start"] = cold_start.run(5 if args.quick else 15)
    if "overhead" in only:
        from bench import overhead

        report["overhead"] = (overhead.run(3, 50) if args.quick else overhead.run())
    if "scale" in only:
        from bench import scale

        with quiet():
            result = scale.run((10, 1000) if args.quick else (10, 1_000, 10_000), 5 if args.quick else 15)
        print(result["table"])
        report["scale"] = result
    if "stream" in only:
        report["stream"] = stream_section()
    if "cost" in only:
        from bench import cost

        with quiet():
            parts = _parts()
            result = cost.run(report.get("requests") or parts.get("requests"),
                              report.get("overhead") or parts.get("overhead"),
                              report.get("stream") or parts.get("stream"))
        print(result["table"])
        report["cost"] = result
    if "agents" in only:
        from bench import agent_turns

        with quiet():
            result = agent_turns.agents_section(args.quick)
        print(result["table"])
        report["agents"] = result
    if "hostile" in only:
        from bench import hostile

        report["hostile"] = hostile.run()
    if "peers" in only:
        from bench import peers

        with quiet():
            result = (peers.run((1, 100), each=10, window=5, reads=1, search_limits=False) if args.quick
                      else peers.run())
        print(result["table"])
        report["peers"] = result
    if "paper" in only:
        from bench import paper

        with quiet():
            result = paper.paper_section(args.quick)
        print(result["table"])
        report["paper"] = result
    if "live" in only:
        from bench import live

        with quiet():
            result = live.live_section(args.quick)
        print(result["table"])
        report["live"] = result
    if "local-runtime" in only:
        from bench import local_runtime

        with quiet():
            result = local_runtime.local_runtime_section(args.quick)
        print(result["table"])
        report["local_runtime"] = result
    report["seconds"] = round(time.time() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench.json" if args.in_process or len(only) > 1 else PARTS / f"{only[0]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {out} in {report['seconds']} s")
    if out.name == "bench.json":
        _write_markdown(report, only, args.quick)
    over = [n for n, r in (report.get("requests") or {}).items()
            if isinstance(r, dict) and r.get("budget") is not None and r["requests"] > r["budget"]]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
