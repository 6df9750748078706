"""Shared fixtures: moto DynamoDB with the tables of template.yaml, principals, payload-2.0 events,
a DynamoDB request counter at the botocore layer, and `local_api`: the one `chatkeep dev` of a test run.

`local_api` (session scope; tests/e2e, tests/security and tests/reliability share it) has:
  base_url                      e.g. http://127.0.0.1:53127
  log_path                      the runtime's stdout+stderr (its request log, the functions' logs)
  token(sub, workspace, name=None, scope=None, **claims) -> str   a bearer token the runtime accepts
  gql(query, variables=None, token=None) -> dict                 the JSON answer of POST /graphql
  request(method, path, token=None, **requests_kwargs) -> requests.Response
  drain() -> dict               wait until the stream poller has processed everything in the stream
  advance_clock(seconds) -> float   move chatkeep.clock in the runtime (cumulative, whole session)
  sweep_ttl() -> int            run one TTL sweep now (deletes items whose TTL <= the runtime's now)
  health() -> dict, dlq() -> list
The clock and the tables are shared by every test that uses it, in any order: use your own workspace ids per
test and assert on what you wrote, never on a whole table being empty or untouched by others.
Under pytest-xdist all of these tests go to one worker (group `local_api`), so one runtime serves them all.
CHATKEEP_E2E_TEMPLATE=path runs them against another template (default: template.yaml)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import moto  # noqa: F401 - first: see MOTO_CONFIG
import pytest
from chatkeep_local.harness import RequestCounter, claims_for, http_event, reset_caches

__all__ = ["RequestCounter", "b64", "claims_for", "http_event", "make_principal", "reset_caches"]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
TABLE_ENV = {
    "ChatTable": "CHAT_TABLE_NAME",
    "SearchIndexTable": "SEARCH_TABLE_NAME",
    "IdempotencyTable": "IDEMPOTENCY_TABLE_NAME",
    "ConnectionsTable": "CONNECTIONS_TABLE_NAME",
}

# Never reach a real AWS account from the tests.
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "ChatkeepTest",
    "POWERTOOLS_SERVICE_NAME": "chatkeep",
    "POWERTOOLS_DEV": "false",
})


# Which function each family of sample events in events/ is for, and what its result must be: "http" (an API
# Gateway payload-2.0 response), "batch" (a partial batch response: batchItemFailures). One entry per prefix.
EVENT_FAMILIES = {
    "graphql_": ("GraphqlApiFunction", "http"),
    "rest_": ("RestApiFunction", "http"),
    "dynamodb_": ("StreamProcessorFunction", "batch"),
    "sqs_": ("AgentTurnFunction", "batch"),
    "websocket_": ("RealtimeFunction", "websocket"),  # WebSocket API proxy events: {"statusCode": ...}
}


# The dynamodb fixture keeps boto3's default session from test to test (moto would reset it, and every client
# would then re-read botocore's service models). moto intercepts requests through a handler botocore gives
# only to sessions created after `import moto`: hence the import above, before any test can make a session
# (an e2e test's client to chatkeep dev's DynamoDB, say) that the fixture would then reuse unmocked.
MOTO_CONFIG = {"core": {"reset_boto3_session": False}}


@cache
def _template() -> dict[str, Any]:
    """template.yaml, parsed once per test session (create_tables only reads it)."""
    from chatkeep_local.template import load_template

    return load_template(TEMPLATE)


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with every table of template.yaml (created from the template, never restated here)."""
    import boto3
    from chatkeep_local import moto_dynamodb
    from chatkeep_local.template import create_tables
    from moto import mock_aws

    moto_dynamodb.install()  # DynamoDB's transaction semantics (moto's copy-and-rollback is neither fast nor isolated)
    # Fresh tables for every test, one boto3 default session for the run (MOTO_CONFIG): 0.05 s a test, not 0.3.
    # Safe here: the credentials are the fake ones set above, never a real account's.
    with mock_aws(config=MOTO_CONFIG):
        client = boto3.client("dynamodb", region_name="us-east-1")
        created = create_tables(client, _template())
        for logical_id, name in created.items():
            if logical_id in TABLE_ENV:
                monkeypatch.setenv(TABLE_ENV[logical_id], name)
        monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
        reset_caches()
        yield client
        reset_caches()


@pytest.fixture
def live(dynamodb: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Any]:
    """A LiveWorld (tests/integration/live_support.py): the WebSocket API emulation, the realtime function and the
    stream processor over moto, for the live-update tests."""
    from tests.integration.live_support import LiveWorld  # websockets and the emulator: only where it is used

    world = LiveWorld(dynamodb, monkeypatch, tmp_path)
    yield world
    world.stop()


LOCAL_API_GROUP = "local_api"
# DynamoDB requests per warm call, measured by tests/integration/test_graphql_requests.py: printed at the end.
REQUEST_COUNTS = pytest.StashKey[dict[str, int]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for name, count in sorted(config.stash.get(REQUEST_COUNTS, {}).items()):
        terminalreporter.write_line(f"  DynamoDB requests per warm call: {name:<50} {count}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """xdist groups (`--dist loadgroup`): every test that drives the run's `chatkeep dev` on one worker, so one
    runtime serves them all; every other module's tests together, so a module-scoped fixture (a sample app's
    runtime, a checkov scan) is built once, not once per worker."""
    for item in items:
        uses_local_api = "local_api" in getattr(item, "fixturenames", ())
        item.add_marker(pytest.mark.xdist_group(LOCAL_API_GROUP if uses_local_api else item.nodeid.split("::")[0]))


@pytest.fixture(scope="session")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The test run's one `chatkeep dev` (see the module docstring), started on first use."""
    from chatkeep_local.testing import LocalApiProcess

    template = Path(os.environ.get("CHATKEEP_E2E_TEMPLATE") or TEMPLATE)
    if not template.is_file():
        pytest.skip("template.yaml not written yet")
    logs = tmp_path_factory.mktemp("local-runtime")
    api = LocalApiProcess(template, cwd=ROOT, log_path=logs / "chatkeep-dev.log")
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def clock_offset() -> Iterator[Any]:
    """Move chatkeep's clock in a test (`clock_offset.advance(120)`); restored afterwards."""
    from chatkeep import clock

    before = clock.offset()
    yield clock
    clock.set_offset(before)


@pytest.fixture
def chat_service(dynamodb: Any) -> Any:
    from chatkeep.repository.dynamodb import DynamoDBChatRepository
    from chatkeep.service import ChatService

    return ChatService(DynamoDBChatRepository())


def make_principal(sub: str = "alice", workspace: str = "ws1", *, name: str | None = "Alice",
                   service: bool = False) -> Any:
    from chatkeep.auth import Principal

    scopes = frozenset({"chatkeep/service"}) if service else frozenset()
    return Principal(sub=sub, workspace_id=workspace, name=name, scopes=scopes, is_service=service)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def ddb_requests(dynamodb: Any) -> RequestCounter:
    from chatkeep import aws

    counter = RequestCounter()
    aws.dynamodb().meta.events.register("before-call.dynamodb.*", counter)
    return counter


def emf_lines(text: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents in captured output (JSON lines holding `_aws`)."""
    return [line for line in map(_json_or_none, text.splitlines()) if line and "_aws" in line]


def _json_or_none(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
