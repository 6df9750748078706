"""Logger and EMF metrics shared by every function (Powertools). One Metrics instance per process:
handlers flush it with `@metrics.log_metrics` (or `@flush_metrics`); the service only counts.

`inject_http_context` and `flush_metrics` are the API handlers' per-request decorators (REST and GraphQL): what
`@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)` and
`@metrics.log_metrics` do, minus per-request work that changes nothing (measured in bench/README.md, section 3)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="chatkeep")
metrics = Metrics(namespace="Chatkeep", service="chatkeep")


def count(name: str, value: int = 1) -> None:
    """Add to a business metric (SessionsCreated, SearchQueries, StreamMessagesCounted, ...)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


_first_invocation = True


def is_cold_start() -> bool:
    """True for the first invocation of this execution environment, as Powertools' Logger says it (its own flag
    is private): never under provisioned concurrency, whose init runs ahead of any request."""
    global _first_invocation
    first, _first_invocation = _first_invocation, False
    return first and os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != "provisioned-concurrency"


def inject_http_context(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """`logger.inject_lambda_context(correlation_id_path=API_GATEWAY_HTTP, clear_state=True)` for payload-2.0
    events: the same keys (cold_start, function_name, function_memory_size, function_arn, function_request_id,
    then correlation_id = requestContext.requestId), the same state (see below), POWERTOOLS_LOGGER_LOG_EVENT and
    sampling honoured. The correlation id is read from the dict instead of through a JMESPath query (about 8 us
    per request, a third of the decorator)."""
    from aws_lambda_powertools.shared.functions import extract_event_from_common_models, resolve_truthy_env_var_choice

    log_event = resolve_truthy_env_var_choice(env=os.getenv("POWERTOOLS_LOGGER_LOG_EVENT", "false"))

    @functools.wraps(handler)
    def decorate(event: Any, context: Any) -> Any:
        cold_start = is_cold_start()
        request_context = event.get("requestContext") if isinstance(event, dict) else None
        # The keys inject_lambda_context(clear_state=True) leaves on the logger, in one append_keys. Its reset
        # (structure_logs, two thirds of this decorator's CPU) only rebuilds the same keys here: no chatkeep
        # module adds logger keys of its own (tests/integration/test_observability.py scans for it), so the
        # only per-request state is these keys, overwritten on every request.
        logger.append_keys(cold_start=cold_start, function_name=context.function_name,
                           function_memory_size=context.memory_limit_in_mb,
                           function_arn=context.invoked_function_arn,
                           function_request_id=context.aws_request_id,
                           correlation_id=request_context.get("requestId")
                           if isinstance(request_context, dict) else None)
        if log_event:
            logger.info(extract_event_from_common_models(event))
        if logger.sampling_rate and not cold_start:
            logger.refresh_sample_rate_calculation()
        return handler(event, context)

    return decorate


def flush_metrics(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """`@metrics.log_metrics` (no cold-start metric, no raise on empty): the EMF line is printed when the
    request counted something. A request that counted nothing skips the flush, whose only effect then is
    Powertools' "No application metrics to publish" UserWarning (a warnings.warn per request)."""

    @functools.wraps(handler)
    def decorate(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()

    return decorate
