"""StreamProcessorFunction: the chat table's DynamoDB stream -> counts, search index, cascades.

Thin: the work (coalesced per batch, partial batch responses) is chatkeep.stream.processor."""

from __future__ import annotations

from typing import Any

from chatkeep.observability import logger, metrics
from chatkeep.stream.processor import handle


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context)
