"""DynamoDB requests per operation (issue 6): every GraphQL operation and REST route with a budget, warm,
counted at the botocore layer on chatkeep's client, must stay within it. The catalogue (set-up, documents,
budgets) is bench/ops.py, the same one `make bench` reports from.

Search needs the index: the scenarios run the stream function over moto's real stream records first."""

from __future__ import annotations

from typing import Any

import pytest

from bench import ops

BUDGETED = [s for s in ops.scenarios() if s.budget is not None]


@pytest.fixture
def world(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> ops.World:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    from chatkeep.stream import processor

    processor.reset()
    return ops.World()


@pytest.mark.parametrize("scenario", BUDGETED, ids=[s.name for s in BUDGETED])
def test_requests_within_budget(world: ops.World, scenario: ops.Scenario) -> None:
    if scenario.api == "rest" and not ops.rest_available():
        pytest.skip("the REST function (chatkeep.rest.app) is not there yet")
    if scenario.needs_stream and not ops.stream_available():
        pytest.skip("search needs the stream function (chatkeep.stream.processor) to build the index")
    used, calls, _ = ops.measure(world, scenario)
    assert used <= scenario.budget, f"{scenario.name}: {used} DynamoDB requests ({calls}), budget {scenario.budget}"


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
