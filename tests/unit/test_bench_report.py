"""`make bench` writes its figures as markdown: every section's table under the run's date and machine, into
bench/results/ on every run and into the figures of record (bench/RESULTS.md) only on a full run."""

from __future__ import annotations

from pathlib import Path

from bench import report

RUN = {"started": "2026-12-03T10:00:00Z", "python": "3.13.0", "machine": "x86_64", "cpus": 2, "quick": False,
       "seconds": 120.0,
       "requests": {"table": "\n## DynamoDB requests per operation\n\n| operation | requests |\n|--|--|\n| a | 1 |"},
       "cold_start": {"table": "\n## Cold start\n\n| function | init |\n|--|--|\n| f | 1.0 |"},
       "stream": {"skipped": True}}


def test_given_a_run_when_rendered_then_its_tables_follow_the_header_in_section_order() -> None:
    text = report.markdown(RUN)

    assert text.startswith("# chatkeep bench results\n")
    assert "Run of 2026-12-03T10:00:00Z (UTC): Python 3.13.0, x86_64, 2 CPUs, 120.0 s." in text
    assert text.index("## Cold start") < text.index("## DynamoDB requests per operation")
    assert "| a | 1 |" in text and "quick run" not in text


def test_given_a_quick_run_when_written_then_the_figures_of_record_are_left_alone(tmp_path: Path) -> None:
    record = tmp_path / "RESULTS.md"
    record.write_text("figures of record\n")

    written = report.write({**RUN, "quick": True}, full_run=False, results=tmp_path / "results", record=record)

    assert written == [tmp_path / "results" / "bench.md"]
    assert "**quick run**" in written[0].read_text() and "(../README.md)" in written[0].read_text()
    assert record.read_text() == "figures of record\n"


def test_given_a_full_run_when_written_then_it_becomes_the_figures_of_record(tmp_path: Path) -> None:
    record = tmp_path / "RESULTS.md"

    report.write(RUN, full_run=True, results=tmp_path / "results", record=record)

    assert "## Cold start" in record.read_text() and "(README.md)" in record.read_text()
