"""The agent-turn worker's batch handling (functions/agent_turn): SQS messages naming turns -> TurnRunner.

Powertools `BatchProcessor` (EventType.SQS) with `process_partial_response`: a turn that another live worker
holds (TurnBusy) or whose run failed unexpectedly is reported in `batchItemFailures`, so SQS delivers it again
after the queue's visibility timeout and, after `maxReceiveCount` deliveries, moves it to the dead-letter queue.
Every outcome that ends the turn (complete, failed with a code, cancelled) is a success for the queue."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chatkeep.agents.runner import TurnResult, TurnRunner
from chatkeep.observability import count, logger, metrics
from chatkeep.stream.turn_queue import TurnJob


@lru_cache(maxsize=1)
def default_runner() -> TurnRunner:
    from chatkeep.agents.model import BedrockModel
    from chatkeep.repository.agents import AgentAccess
    from chatkeep.repository.turn_store import TurnStore
    from chatkeep.settings import get_settings

    settings = get_settings()
    live = None
    if settings.live_updates:  # the reply's chunks to the session's subscribers (docs/live-updates.md)
        from chatkeep.realtime.publisher import default_publisher
        from chatkeep.realtime.reply_stream import reply_streams

        live = reply_streams(default_publisher())
    return TurnRunner(store=TurnStore(settings), agents=AgentAccess(settings), model=BedrockModel(),
                      settings=settings, live=live)


def reset() -> None:
    """Forget the cached runner (tests and the local runtime change settings and clients)."""
    default_runner.cache_clear()


def _by_dimension(name: str, unit: MetricUnit, value: float, dimension: str, dimension_value: str) -> None:
    """A metric with a dimension of its own (failure code, model): its own EMF document, so the dimension does not
    spread to the invocation's other metrics. EphemeralMetrics honours POWERTOOLS_METRICS_DISABLED."""
    one = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    one.add_dimension(name=dimension, value=dimension_value)
    one.add_metric(name=name, unit=unit, value=value)
    one.flush_metrics()


def _record_metrics(result: TurnResult) -> None:
    if result.outcome == "skipped":
        return
    count("TurnsRun")
    if result.outcome == "failed":
        count("TurnsFailed")
        _by_dimension("TurnsFailedByCode", MetricUnit.Count, 1, "code", result.error_code or "unknown")
    if result.outcome == "cancelled":
        count("TurnsCancelled")
    if result.time_to_first_token_ms is not None:
        metrics.add_metric(name="TimeToFirstToken", unit=MetricUnit.Milliseconds, value=result.time_to_first_token_ms)
    metrics.add_metric(name="TurnDuration", unit=MetricUnit.Milliseconds, value=result.duration_ms)
    if result.usage is not None and result.model:
        _by_dimension("InputTokens", MetricUnit.Count, result.usage.input_tokens, "model", result.model)
        _by_dimension("OutputTokens", MetricUnit.Count, result.usage.output_tokens, "model", result.model)


def handle(event: dict[str, Any], context: Any, runner: TurnRunner | None = None) -> PartialItemFailureResponse:
    runner = runner or default_runner()
    request_id = getattr(context, "aws_request_id", "local")

    def run_turn(record: SQSRecord) -> TurnResult:
        job = TurnJob.model_validate_json(record.body)
        result = runner.run(job.workspace_id, job.session_id, job.turn_id, worker=f"{request_id}/{record.message_id}")
        logger.info("turn ended", extra={"session_id": job.session_id, "turn_id": job.turn_id,
                                         "outcome": result.outcome, "error_code": result.error_code,
                                         "attempts": result.attempts, "reply_writes": result.writes,
                                         "time_to_first_token_ms": result.time_to_first_token_ms,
                                         "duration_ms": round(result.duration_ms, 1)})
        _record_metrics(result)
        return result

    # A batch whose every record failed is still a partial batch response, not a function error: a turn held
    # by a live worker is not a crash (the Errors alarm stays for real ones), and SQS redelivers either way.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=run_turn, processor=processor, context=context)
