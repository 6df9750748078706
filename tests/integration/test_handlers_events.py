"""Every function template.yaml declares, invoked through its declared CodeUri/Handler (imported by file path,
as Lambda would load it) with each of its sample events from events/, under moto with the template's tables
and a Lambda-like context. API events must get a well-formed payload-2.0 response that is not a 5xx; stream
and queue events must get a `batchItemFailures` list. A function or events that do not exist yet are skipped."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from chatkeep_local import lambda_runtime
from chatkeep_local.harness import declared_handler
from conftest import EVENT_FAMILIES, _template

# A handler that publishes no metric for an event (a read) makes Powertools warn; that is not a failure.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
# Which function each family of sample events is for (tests/conftest.py).
EVENT_PREFIXES = {prefix: function for prefix, (function, _) in EVENT_FAMILIES.items()}
STREAM_FUNCTIONS = {function for function, result in EVENT_FAMILIES.values() if result == "batch"}
GRAPHQL_CODES = {"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "SESSION_EXPIRED", "SESSION_CLOSED",
                 "GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED", "PERSISTED_QUERY_NOT_FOUND"}
# The function's own environment wins, except what points it at the tables: the moto fixture owns those.
FIXTURE_ENV = {"CHAT_TABLE_NAME", "SEARCH_TABLE_NAME", "IDEMPOTENCY_TABLE_NAME", "CONNECTIONS_TABLE_NAME",
               "DYNAMODB_ENDPOINT_URL"}
WEBSOCKET_ROUTES = {"$connect", "$disconnect", "$default"}


@cache
def declared_functions() -> dict[str, Any]:
    from chatkeep_local.template import functions

    return functions(_template())


@cache
def declared_routes() -> dict[str, set[str]]:
    from chatkeep_local.template import routes

    out: dict[str, set[str]] = {}
    for route in routes(_template()):
        out.setdefault(route.function, set()).add(route.route_key)
    return out


def cases() -> list[Any]:
    found = []
    for prefix, function in EVENT_PREFIXES.items():
        paths = sorted(EVENTS.glob(f"{prefix}*.json"))
        if not paths:
            found.append(pytest.param(function, None, id=f"{function}-no-{prefix}events"))
        found += [pytest.param(function, path, id=f"{function}-{path.stem}") for path in paths]
    # Functions of the template that no family of events names (a new function needs its events).
    for function in declared_functions():
        if function not in EVENT_PREFIXES.values():
            found.append(pytest.param(function, None, id=f"{function}-unmapped"))
    return found


def test_every_function_in_the_template_has_a_family_of_events():
    assert set(declared_functions()) <= set(EVENT_PREFIXES.values()), (
        "a function without sample events: add its prefix to EVENT_PREFIXES and events/")


@pytest.mark.parametrize("function, event_path", cases())
def test_given_a_sample_event_when_invoking_the_declared_handler_then_a_well_formed_response(
        dynamodb, monkeypatch, function, event_path):
    functions = declared_functions()
    if function not in functions:
        pytest.skip(f"{function} is not declared in template.yaml yet")
    spec = functions[function]
    if not spec.module_file.is_file():
        pytest.skip(f"{function}: {spec.module_file.relative_to(ROOT)} does not exist yet")
    if event_path is None:
        pytest.skip(f"{function}: no sample events in events/ yet")
    for name, value in spec.environment.items():
        if name not in FIXTURE_ENV:
            monkeypatch.setenv(name, value)
    from conftest import reset_caches

    reset_caches()
    event = json.loads(event_path.read_text())
    handler = declared_handler(function)
    context = lambda_runtime.LambdaContext(spec)
    response = handler(event, context)
    json.dumps(response)  # what Lambda returns must serialise

    if function in STREAM_FUNCTIONS:
        assert isinstance(response, dict) and isinstance(response.get("batchItemFailures"), list), response
        assert all(set(f) == {"itemIdentifier"} for f in response["batchItemFailures"])
        return

    if function == "RealtimeFunction":  # WebSocket API events (moto stands in for the @connections API)
        assert event["requestContext"]["routeKey"] in WEBSOCKET_ROUTES
        assert isinstance(response, dict) and response.get("statusCode") == 200, response
        return
    assert event.get("version") == "2.0"
    assert event["routeKey"] in declared_routes().get(function, set()), (
        f"{event_path.name}: route {event['routeKey']!r} is not one of {function}'s routes")
    assert isinstance(response, dict) and isinstance(response.get("statusCode"), int), response
    assert response["statusCode"] < 500, response
    assert isinstance(response.get("body", ""), str)
    assert "Traceback" not in response.get("body", "")
    if function == "GraphqlApiFunction":
        assert response["statusCode"] == 200, response
        body = json.loads(response["body"])
        assert "data" in body or "errors" in body
        assert {e["extensions"]["code"] for e in body.get("errors", [])} <= GRAPHQL_CODES, body


@pytest.mark.parametrize("path", sorted(EVENTS.glob("graphql_*.json")), ids=lambda p: p.stem)
def test_given_a_graphql_sample_event_then_it_is_the_guides_operation_with_jwt_claims(path):
    event = json.loads(path.read_text())
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert {"sub", "workspace_id", "given_name", "iss", "aud"} <= set(claims)
    assert claims["iss"] == "chatkeep-local" and claims["aud"] == "chatkeep"
    body = json.loads(event["body"])
    operation = path.stem.removeprefix("graphql_")
    from graphql import OperationDefinitionNode, parse

    document = parse(body["query"])
    (definition,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert [s.name.value for s in definition.selection_set.selections] == [operation]
    assert body["operationName"] == definition.name.value
