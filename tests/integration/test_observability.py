"""What the REST function logs and counts per request, through its declared Lambda handler (decorators
included). Posts are the busiest write: they print no EMF line and no INFO line (the stream counts messages,
the access log records requests); session creation still counts SessionsCreated."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from chatkeep_local.harness import LambdaContext, declared_handler

from tests.conftest import claims_for, emf_lines, http_event


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def rest(dynamodb: Any) -> Any:
    handler = declared_handler("RestApiFunction")

    def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
        out = handler(http_event(method, path, body=body, claims=claims_for()), LambdaContext())
        assert out["statusCode"] < 300, out
        return json.loads(out["body"])

    return call


@pytest.fixture
def log_records() -> Any:
    from chatkeep.observability import logger

    records = Records()
    logger._logger.addHandler(records)  # Powertools' Logger does not propagate: listen on it directly
    yield records.records
    logger._logger.removeHandler(records)


def test_given_a_session_when_a_message_is_posted_then_no_metric_flush_and_no_info_line(
        rest: Any, log_records: list[logging.LogRecord], capsys: pytest.CaptureFixture[str]) -> None:
    channel = rest("POST", "/v1/channels", {"name": "c"})
    session = rest("POST", f"/v1/channels/{channel['id']}/sessions", {"title": "t"})
    capsys.readouterr()
    log_records.clear()
    service_log = logging.getLogger("chatkeep.service")
    level = service_log.level
    service_log.setLevel(logging.DEBUG)  # let the DEBUG line through, to see its level (the logger runs at INFO)
    try:
        message = rest("POST", f"/v1/sessions/{session['id']}/messages", {"content": "hello"})
    finally:
        service_log.setLevel(level)

    assert message["content"] == "hello"
    assert emf_lines(capsys.readouterr().out) == []
    posted = [r for r in log_records if r.getMessage() == "message posted"]
    assert [r.levelno for r in posted] == [logging.DEBUG]
    assert not [r for r in log_records if r.levelno >= logging.INFO]


def test_given_a_channel_when_a_session_is_created_then_sessions_created_is_flushed_once(
        rest: Any, capsys: pytest.CaptureFixture[str]) -> None:
    channel = rest("POST", "/v1/channels", {"name": "c"})
    capsys.readouterr()

    rest("POST", f"/v1/channels/{channel['id']}/sessions", {"title": "t"})

    lines = emf_lines(capsys.readouterr().out)
    assert len(lines) == 1
    assert lines[0]["SessionsCreated"] in (1, [1])  # Powertools writes one value as a list of one
    assert lines[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Chatkeep"


LOGGER_STATE_CALLS = re.compile(r"\.(append_keys|thread_safe_append_keys|structure_logs|set_correlation_id|"
                                r"append_context_keys)\(")


def test_given_the_product_code_then_only_the_request_decorator_sets_logger_keys() -> None:
    # inject_http_context overwrites its keys per request instead of resetting the logger (Powertools'
    # clear_state); that is the same state only while no other module adds keys of its own.
    root = Path(__file__).resolve().parents[2]
    setters = [str(path.relative_to(root)) for folder in ("layers/common/chatkeep", "functions")
               for path in (root / folder).rglob("*.py")
               if LOGGER_STATE_CALLS.search(path.read_text(encoding="utf-8"))]
    assert setters == ["layers/common/chatkeep/observability.py"]


def test_given_two_requests_then_each_log_line_carries_its_own_request_keys_as_inject_lambda_context_does(
        rest: Any, log_records: list[logging.LogRecord]) -> None:
    from aws_lambda_powertools.logging import correlation_paths
    from chatkeep.observability import logger

    def rendered(message: str) -> dict[str, Any]:
        record = next(r for r in reversed(log_records) if r.getMessage() == message)
        return json.loads(logger.registered_formatter.format(record))

    channel = rest("POST", "/v1/channels", {"name": "c"})
    handler = declared_handler("RestApiFunction")
    lines = []
    for request_id in ("req-1", "req-2"):
        event = http_event("POST", f"/v1/channels/{channel['id']}/sessions", body={"title": request_id},
                           claims=claims_for())
        event["requestContext"]["requestId"] = request_id
        context = LambdaContext()
        context.aws_request_id = f"lambda-{request_id}"
        assert handler(event, context)["statusCode"] == 201
        lines.append(rendered("session created"))

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
    def powertools_decorated(event: dict[str, Any], context: Any) -> None:
        logger.info("reference line")

    powertools_decorated(event, LambdaContext())
    reference = rendered("reference line")

    assert [line["correlation_id"] for line in lines] == ["req-1", "req-2"]
    assert [line["function_request_id"] for line in lines] == ["lambda-req-1", "lambda-req-2"]
    assert lines[1]["cold_start"] is False
    function_keys = ["function_name", "function_memory_size", "function_arn"]
    for line in lines:  # the same keys, in Powertools' order, with the same values (but the request's own)
        assert [k for k in line if k in reference] == list(reference)
        assert {k: line[k] for k in function_keys} == {k: reference[k] for k in function_keys}
