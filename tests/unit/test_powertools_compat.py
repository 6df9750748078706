"""The assumptions chatkeep makes about Powertools, checked against the installed version: the internals used by
chatkeep/powertools_compat.py (one test each), the contract the stream processor's process() relies on, and the
pin itself. A Powertools upgrade that breaks one fails here, by name, before it fails anywhere else."""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from chatkeep import powertools_compat
from chatkeep_local.harness import http_event
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> list[SpecifierSet]:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    lines = [*declared, *(ROOT / "layers" / "common" / "requirements.txt").read_text(encoding="utf-8").splitlines()]
    return [SpecifierSet(re.sub(r"^aws-lambda-powertools(\[[^]]*\])?", "", line).strip())
            for line in lines if line.startswith("aws-lambda-powertools")]


def _app_with(route: Any, path: str = "/things/<thing_id>", **options: Any) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()
    app.get(path, **options)(route)
    return app


def test_given_the_pins_then_they_hold_one_tested_minor_and_the_installed_version_is_in_it() -> None:
    pins = _pins()
    assert len(pins) == 2, "pyproject.toml and layers/common/requirements.txt each pin aws-lambda-powertools"
    installed = version("aws-lambda-powertools")
    for pin in pins:
        assert installed in pin, f"aws-lambda-powertools {installed} is outside the tested range {pin}"
        assert {s.operator for s in pin} == {">=", "<"}, pin
        low, high = (next(s.version for s in pin if s.operator == op) for op in (">=", "<"))
        assert low.split(".")[:2] == installed.split(".")[:2] and high.split(".")[0] == low.split(".")[0], pin


def test_given_the_response_builder_then_compression_is_asked_through_the_static_method_we_override() -> None:
    method = inspect.getattr_static(ResponseBuilder, "_has_compression_enabled")
    assert isinstance(method, staticmethod)
    assert list(inspect.signature(method.__func__).parameters) == ["route_compression", "response_compression",
                                                                   "event"]
    source = inspect.getsource(ResponseBuilder)
    assert "self._has_compression_enabled(" in source  # asked through the class, so the override is used


def test_given_a_resolver_then_it_builds_every_response_with_its_response_builder_class(monkeypatch: Any) -> None:
    asked: list[bool] = []
    original = powertools_compat.LazyCompressionResponseBuilder._has_compression_enabled

    def spy(route_compression: bool, response_compression: bool | None, event: Any) -> bool:
        asked.append(route_compression)
        return original(route_compression, response_compression, event)

    monkeypatch.setattr(powertools_compat.LazyCompressionResponseBuilder, "_has_compression_enabled",
                        staticmethod(spy))
    app = _app_with(lambda thing_id: Response(200, "text/plain", thing_id), compress=True)
    assert hasattr(app, "_response_builder_class")
    powertools_compat.use_lazy_compression(app)
    reply = app.resolve(http_event("GET", "/things/1", headers={"Accept-Encoding": "gzip"}), None)
    assert asked == [True] and reply["headers"].get("Content-Encoding") == "gzip"


def test_given_a_middleware_then_the_route_and_its_arguments_are_in_the_context_keys_we_read_and_write() -> None:
    seen: dict[str, Any] = {}

    def route(thing_id: str) -> Response:
        return Response(200, "text/plain", thing_id)

    def middleware(app: Any, next_middleware: Any) -> Any:
        seen["route"] = powertools_compat.current_route(app)
        seen["arguments"] = dict(powertools_compat.route_arguments(app))
        powertools_compat.set_route_arguments(app, {"thing_id": "validated"})
        return next_middleware(app)

    app = _app_with(route)
    app.use(middlewares=[middleware])
    reply = app.resolve(http_event("GET", "/things/raw"), None)
    assert seen["route"].func is route and seen["arguments"] == {"thing_id": "raw"}
    assert reply["body"] == "validated"


def test_given_a_batch_processor_then_process_runs_inside_the_call_and_the_handlers_build_the_response() -> None:
    """What chatkeep.stream.processor.CoalescingBatchProcessor.process() relies on (public API): records and
    handler set by the call, success_handler / failure_handler building the partial batch response."""

    class Processor(BatchProcessor):
        def process(self) -> list[tuple]:
            results = []
            for record in self.records:
                wrapped = self._record(record)
                try:
                    results.append(self.success_handler(record=wrapped, result=self.handler(record=wrapped)))
                except ValueError as exc:
                    results.append(self.failure_handler(record=wrapped, exception=(type(exc), exc, None)))
            return results

        @staticmethod
        def _record(record: dict[str, Any]) -> Any:
            from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

            return DynamoDBRecord(record)

    def handler(record: Any) -> None:
        if record.dynamodb.sequence_number == "2":
            raise ValueError("fails")

    records = [{"eventID": str(n), "eventName": "INSERT", "eventSource": "aws:dynamodb",
                "dynamodb": {"SequenceNumber": str(n), "Keys": {"pk": {"S": "x"}}}} for n in (1, 2)]
    processor = Processor(event_type=EventType.DynamoDBStreams)
    response = process_partial_response(event={"Records": records}, record_handler=handler, processor=processor)
    assert response == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert len(processor.fail_messages) == 1
