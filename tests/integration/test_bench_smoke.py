"""The overhead benchmark still runs (its figures are read by people, not asserted): one tiny round over
every guide operation, each row measured against its baseline, REST rows also against the bare route
that declares no parameters."""

from __future__ import annotations

import json
from typing import Any


def test_given_one_tiny_round_when_the_overhead_bench_runs_then_every_row_has_its_baselines() -> None:
    from bench import overhead

    results: dict[str, Any] = overhead.run(rounds=1, iterations=2)

    rows = {name: row for name, row in results.items() if name != "table"}
    rest = {name: row for name, row in rows.items() if name.startswith("REST ")}
    assert len(rows) >= 13 and len(rest) == 4
    for row in rows.values():
        assert row["handler_cpu_ms"] > 0 and row["bare_cpu_ms"] > 0 and row["ratio"] > 0
    for row in rest.values():
        assert row["no_parameters_cpu_ms"] > 0 and row["no_parameters_ratio"] > 0
    assert "bare, no parameters" in results["table"]


def test_given_measured_item_sizes_when_the_cost_model_runs_then_its_dollars_are_units_times_the_prices() -> None:
    from bench import cost

    results: dict[str, Any] = cost.run()

    (post, post_rru, post_wru, post_ddb, _, post_total), (read, read_rru, _, read_ddb, _, read_total) = results["rows"]
    prices = results["prices"]
    assert (post, read) == ("1M messages posted", "1M session reads")
    assert post_wru >= 6 and post_rru >= 1 and read_rru >= 1  # at least the post's transaction and one read
    assert post_ddb == post_wru * prices["wru_per_million"] + post_rru * prices["rru_per_million"]
    assert read_ddb == read_rru * prices["rru_per_million"]
    assert post_total > post_ddb and read_total > read_ddb  # Lambda on top
    assert f"${prices['wru_per_million']}/M WRU" in results["table"]


def test_given_the_hostile_bench_request_then_the_api_accepts_it_and_each_post_has_more_words_than_are_indexed(
        dynamodb: Any) -> None:
    """bench/hostile.py measures the worst request the API *accepts*: its document must pass the bounds, and its
    content must be a full message of more distinct words than one message is indexed by."""
    from chatkeep import limits, text
    from chatkeep.graphql.server import handle
    from chatkeep_local.harness import claims_for, http_event

    from bench import hostile

    content = hostile.distinct_words()
    assert len(content.encode()) <= limits.MAX_CONTENT_BYTES and len(text.words(content)) > text.MAX_INDEXED_WORDS
    create = f"mutation{{createTodoChatSession(data:{{todoId: {hostile.HOSTILE_TODO}}}){{id}}}}"
    sessions = []
    for _ in range(hostile.mutation_fields()):
        reply = handle(http_event("POST", "/graphql", body={"query": create}, claims=claims_for()))
        sessions.append(int(json.loads(reply["body"])["data"]["createTodoChatSession"]["id"]))
    document = hostile.hostile_document(sessions)
    reply = handle(http_event("POST", "/graphql", body={"query": document, "variables": {"m": content}},
                              claims=claims_for()))
    body = json.loads(reply["body"])
    assert reply["statusCode"] == 200 and "errors" not in body, reply["body"][:300]
    assert len(body["data"]) == limits.MAX_MUTATION_FIELDS


def test_given_a_tiny_run_when_the_local_runtime_bench_runs_then_its_row_has_every_figure() -> None:
    from bench import local_runtime

    results: dict[str, Any] = local_runtime.local_runtime_section(seconds=0.5, starts=1,
                                                                  modes=local_runtime.MODES[-1:])

    (row,) = results["modes"].values()
    assert row["start_s"] > 0 and row["posts"] > 0 and row["refused"] == 0
    assert row["drained"] and row["behind_at_last_post"] >= 0 and row["drained_after_s"] >= 0
    assert "start to 1st 200 (s)" in results["table"] and "default (environments, moto process)" in results["table"]
