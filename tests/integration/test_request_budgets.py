"""DynamoDB requests per operation (issue 6): every GraphQL operation and REST route, warm, counted at the
botocore layer on chatkeep's client, must stay within its budget (where issue 6 sets one) and at the minimum
the data model allows, unless the catalogue says why it spends more. The catalogue (set-up, documents,
budgets, minimums) is bench/ops.py, the same one `make bench` reports from.

Search needs the index: the scenarios run the stream function over moto's real stream records first."""

from __future__ import annotations

from typing import Any

import pytest

from bench import ops

SCENARIOS = ops.scenarios()
BUDGETED = [s for s in SCENARIOS if s.budget is not None]


@pytest.fixture
def world(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> ops.World:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    from chatkeep.stream import processor

    processor.reset()
    return ops.World()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_requests_within_budget_and_at_the_minimum(world: ops.World, scenario: ops.Scenario) -> None:
    """Given the operation's data in moto, when it runs warm, then it sends no more requests than its budget,
    and exactly the data model's minimum unless the catalogue states why it spends more (then more it is:
    a row that reached its minimum must say so)."""
    used, calls, _ = ops.measure(world, scenario)
    if scenario.budget is not None:
        assert used <= scenario.budget, f"{scenario.name}: {used} requests ({calls}), budget {scenario.budget}"
    assert used >= scenario.minimum, f"{scenario.name}: {used} requests ({calls}) is below its stated minimum"
    if scenario.above_minimum is None:
        assert used == scenario.minimum, f"{scenario.name}: {used} requests ({calls}), minimum {scenario.minimum}"
    else:
        assert used > scenario.minimum, f"{scenario.name} is at its minimum: drop its above_minimum reason"


def test_every_operation_states_its_minimum_and_why() -> None:
    for scenario in SCENARIOS:
        assert scenario.minimum >= 0 and scenario.why, scenario.name
        assert scenario.budget is None or scenario.minimum <= scenario.budget, scenario.name


def test_every_budget_of_the_issue_is_covered() -> None:
    names = " ".join(s.name for s in BUDGETED)
    for operation in ("getOneTodoChatSession", "getTodoChatSessions", "createTodoChatSession",
                      "updateTodoChatSession", "createTodoChatMessage", "getOrCreateUserStartTodoChatSession",
                      "getSearchTodoChatSessions", "deleteTodoChatSession", "deleteManyTodoChatSession",
                      "REST GET /v1/sessions/{id}", "REST POST /v1/sessions/{id}/messages",
                      "REST GET /v1/sessions/{id}/messages"):
        assert operation in names


def test_delete_many_budget_formula() -> None:
    assert [ops.delete_many_budget(k) for k in (1, 25, 26, 100)] == [2, 2, 3, 5]
