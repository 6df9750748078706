"""GraphqlApiFunction: POST /graphql (API Gateway HTTP API, payload 2.0)."""

from aws_lambda_powertools.logging import correlation_paths
from chatkeep.aws import prewarm
from chatkeep.graphql.server import handle, schema
from chatkeep.observability import logger, metrics

schema()  # built during init (and captured by SnapStart), not on the first request
prewarm()  # the DynamoDB client too, when init is off the request path (SnapStart, provisioned)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return handle(event)
