"""The load model of bench/paper.py ("scale on paper") against the real code, and the goal it states.

The model spells every write the code issues; if the code changes how it writes (a new item, a different key, an
extra transaction item) and the model does not follow, the cross-check fails here, so the model's tables cannot
drift from the code (docs/architecture.md, "Limits and scale")."""

from __future__ import annotations

from typing import Any

import pytest

from bench import paper, paper_check


@pytest.fixture(scope="module")
def cross_check() -> dict[str, Any]:
    return paper_check.run()


def test_given_a_small_workload_when_the_real_code_runs_then_the_model_counts_the_same_writes_per_key(
        cross_check: dict[str, Any]) -> None:
    counted, modelled = cross_check["counted"], cross_check["modelled"]

    assert cross_check["summary"]["differing_keys"] == []
    assert counted == pytest.approx(modelled)
    targets = {target for target, _ in counted}
    assert targets == {paper.CHAT, paper.GSI1, paper.LSI1, paper.SEARCH, paper.BY_SESSION}
    # the workload touched every spread key family: index shards, activity shards and a usage shard
    pks = " ".join(pk for _, pk in counted)
    assert "#I#" in pks and "#A#" in pks and "#USAGE#" in pks


def test_given_the_items_written_then_their_sizes_are_what_the_model_assumes_within_a_write_unit(
        cross_check: dict[str, Any]) -> None:
    measured, assumed = cross_check["sizes"], paper.Sizes()
    for name, size in measured.items():
        assert paper.kb(size) == paper.kb(getattr(assumed, name)), (name, size)


def test_given_the_goal_workload_then_no_key_of_any_table_or_index_passes_half_its_limits() -> None:
    load = paper.simulate(paper.GOAL)

    over = [(p.target, p.key, round(p.share, 3)) for p in paper.peaks(load) if p.share > paper.GOAL_SHARE]
    assert over == []
    top, factor = paper.first_to_pass(load)
    assert factor > 2, (top.target, top.key, factor)


def test_given_the_layout_before_the_shards_then_one_container_key_passes_its_limit_far_below_the_goal() -> None:
    load = paper.simulate(paper.GOAL, paper._one_key())

    top, factor = paper.first_to_pass(load)
    assert (top.target, factor < 0.05) == (paper.SEARCH, True)
    shares = {p.target: p.share for p in paper.peaks(load)}
    assert shares[paper.GSI1] > 1 and shares[paper.CHAT] > 1  # activity order and the usage sums too
