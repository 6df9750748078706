"""`chatkeep invoke`, as a user runs it (a subprocess of `python -m chatkeep_local.cli invoke`): every file in
events/ goes through it, one process per family of events (tests/conftest.py EVENT_FAMILIES), and what comes back
on stdout is the handler's result, one JSON document per event; errors come back as Lambda reports them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import EVENT_FAMILIES, _template

pytestmark = pytest.mark.tool  # a subprocess per test: left out of make quick

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def invoke(function: str, *events: Path | str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    args = [arg for event in events for arg in ("-e", str(event))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "local"), str(ROOT / "layers" / "common")]))
    return subprocess.run([sys.executable, "-m", "chatkeep_local.cli", "invoke", function, *args, *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def declared_functions() -> set[str]:
    from chatkeep_local.template import functions

    return set(functions(_template()))


def test_every_event_file_belongs_to_a_family():
    orphans = [p.name for p in EVENTS.glob("*.json") if not p.name.startswith(tuple(EVENT_FAMILIES))]
    assert orphans == [], f"events with no function to invoke them on: add their prefix to EVENT_FAMILIES: {orphans}"


@pytest.mark.parametrize("prefix", sorted(EVENT_FAMILIES))
def test_given_a_family_of_sample_events_when_invoked_then_each_prints_the_handlers_result(prefix):
    function, kind = EVENT_FAMILIES[prefix]
    paths = sorted(EVENTS.glob(f"{prefix}*.json"))
    if not paths:
        pytest.skip(f"no {prefix}*.json in events/ yet ({function})")
    assert function in declared_functions(), (
        f"{', '.join(p.name for p in paths)}: for {function}, which template.yaml does not declare")

    done = invoke(function, *paths)

    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]  # stdout holds the results and nothing else
    assert len(results) == len(paths), done.stdout[-2000:]
    for path, result in zip(paths, results, strict=True):
        check_result(kind, path, result)
    assert done.stderr.count("REPORT RequestId: ") == len(paths)


def check_result(kind: str, path: Path, result: Any) -> None:
    assert "errorType" not in result, (path.name, result)
    if kind == "batch":
        assert isinstance(result.get("batchItemFailures"), list), (path.name, result)
        assert all(set(failure) == {"itemIdentifier"} for failure in result["batchItemFailures"]), result
        return
    assert isinstance(result.get("statusCode"), int) and result["statusCode"] < 500, (path.name, result)
    assert isinstance(result.get("body", ""), str) and "Traceback" not in result.get("body", "")


def test_given_an_event_the_handler_raises_on_then_exit_1_and_lambdas_error_document(tmp_path):
    bad = tmp_path / "bad_stream_event.json"
    bad.write_text(json.dumps({"Records": "not a list"}))

    done = invoke("StreamProcessorFunction", bad)

    assert done.returncode == 1
    (error,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert set(error) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert error["errorType"] == "UnexpectedBatchTypeError" and "Unexpected batch event type" in error["errorMessage"]
    assert any("functions/stream_processor/app.py" in frame for frame in error["stackTrace"])
    assert not any("chatkeep_local" in frame for frame in error["stackTrace"])  # the handler's frames only
    assert "[ERROR] UnexpectedBatchTypeError: " in done.stderr


def test_given_env_vars_in_sams_format_then_the_function_runs_with_them(tmp_path):
    """Parameters for every function, the function's own entries over them; a table named otherwise (a deployed
    stack's name) is created under that name too; what SAM would not set is said, not set."""
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps({
        "Parameters": {"CHAT_TABLE_NAME": "chatkeep-prod-ChatTable-1X2Y", "NOT_DECLARED": "x"},
        "GraphqlApiFunction": {"ENABLE_INTROSPECTION": "false", "DYNAMODB_ENDPOINT_URL": "http://localhost:8000"},
    }))
    event = json.loads((EVENTS / "graphql_getTodoChatSessions.json").read_text())
    introspect = tmp_path / "introspect.json"
    introspect.write_text(json.dumps({**event, "body": json.dumps({"query": "{ __schema { queryType { name } } }"})}))
    create_event = json.loads((EVENTS / "graphql_createTodoChatSession.json").read_text())
    body = json.loads(create_event["body"])
    del body["variables"]["data"]["defaultBotId"]  # a fresh table has no agent: create without one
    create = tmp_path / "create.json"
    create.write_text(json.dumps({**create_event, "body": json.dumps(body)}))

    done = invoke("GraphqlApiFunction", introspect, create, extra=("--env-vars", str(env_file), "--log-level", "INFO"))

    assert done.returncode == 0, done.stderr[-3000:]
    refused, created = (json.loads(json.loads(line)["body"]) for line in done.stdout.splitlines())
    assert refused["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"  # the file's "false" won
    assert created["data"]["createTodoChatSession"]["id"], created
    assert "tables also created as ChatTable=chatkeep-prod-ChatTable-1X2Y" in done.stderr
    assert "NOT_DECLARED is not an environment variable GraphqlApiFunction declares" in done.stderr
    assert "DYNAMODB_ENDPOINT_URL is set by chatkeep invoke itself" in done.stderr


def test_given_env_json_example_then_every_entry_is_a_declared_function_and_variable():
    from chatkeep_local.invoke import env_vars_for
    from chatkeep_local.template import functions

    example = json.loads((ROOT / "env.json.example").read_text())
    declared = functions(_template())
    assert set(example) - {"Parameters"} <= set(declared)
    for name, spec in declared.items():
        values, warnings = env_vars_for(example, name, spec.environment)
        assert warnings == [], (name, warnings)
        assert set(example["Parameters"]) <= set(values)


def test_given_a_function_the_template_does_not_declare_then_one_line_naming_those_it_does():
    done = invoke("NoSuchFunction", EVENTS / "rest_docs.json")

    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("chatkeep invoke: no function NoSuchFunction in template.yaml (its functions: ")
    assert "GraphqlApiFunction" in line
