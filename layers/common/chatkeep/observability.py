"""Logger and EMF metrics shared by every function (Powertools). One Metrics instance per process:
handlers flush it with `@metrics.log_metrics`; the service only counts."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="chatkeep")
metrics = Metrics(namespace="Chatkeep", service="chatkeep")


def count(name: str, value: int = 1) -> None:
    """Add to a business metric (SessionsCreated, MessagesPosted, SearchQueries, StreamRecordsProcessed)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
