"""StreamProcessorFunction: the chat table's DynamoDB stream -> counts, search index, cascades.

Thin: the work (coalesced per batch, partial batch responses) is chatkeep.stream.processor."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from chatkeep.stream.processor import handle

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context)
