"""RestApiFunction: the /v1 REST API, /openapi.json and /docs (API Gateway HTTP API, payload 2.0).
Thin: routing, validation, errors and shaping live in chatkeep.rest."""

from chatkeep.aws import prewarm
from chatkeep.observability import flush_metrics, inject_http_context
from chatkeep.rest.app import handler

prewarm()  # the DynamoDB client at init when init is off the request path (SnapStart, provisioned)


# = @logger.inject_lambda_context(correlation_id_path=API_GATEWAY_HTTP, clear_state=True) + @metrics.log_metrics,
# without their per-request cost that changes nothing (chatkeep.observability; bench/README.md section 3).
@inject_http_context
@flush_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return handler(event, context)
