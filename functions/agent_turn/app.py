"""AgentTurnFunction: TurnQueue (SQS) -> one agent turn per message, answered with Amazon Bedrock ConverseStream.

Thin: the batch handling is chatkeep.agents.worker, the turn itself chatkeep.agents.runner (docs/agents.md)."""

from __future__ import annotations

from typing import Any

from chatkeep.agents.worker import handle
from chatkeep.observability import logger, metrics


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context)
