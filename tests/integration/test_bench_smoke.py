"""The overhead benchmark still runs (its figures are read by people, not asserted): one tiny round over
every guide operation, each row measured against its baselines, REST rows against both bare routes."""

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
        assert row["same_signature_cpu_ms"] > 0 and row["same_signature_ratio"] > 0
    assert "same-signature bare" in results["table"]
