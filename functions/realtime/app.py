"""RealtimeFunction: the live-updates WebSocket API ($connect, $disconnect, $default) -> graphql-transport-ws.

Thin: the protocol and its state (the connections table) are chatkeep.realtime (docs/live-updates.md)."""

from __future__ import annotations

from typing import Any

from chatkeep.observability import flush_metrics, logger
from chatkeep.realtime.handler import handle


@flush_metrics
@logger.inject_lambda_context(log_event=False, correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context)
