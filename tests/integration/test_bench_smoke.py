"""The overhead benchmark still runs (its figures are read by people, not asserted): one tiny round over
every guide operation, each row measured against its baseline, REST rows also against the bare route
that declares no parameters."""

from __future__ import annotations

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
