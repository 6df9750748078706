"""RestApiFunction: the /v1 REST API, /openapi.json and /docs (API Gateway HTTP API, payload 2.0).
Thin: routing, validation, errors and shaping live in chatkeep.rest."""

from aws_lambda_powertools.logging import correlation_paths
from chatkeep.aws import prewarm
from chatkeep.observability import logger, metrics
from chatkeep.rest.app import handler

prewarm()  # the DynamoDB client at init when init is off the request path (SnapStart, provisioned)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return handler(event, context)
