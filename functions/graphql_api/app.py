"""GraphqlApiFunction: POST /graphql (API Gateway HTTP API, payload 2.0)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from chatkeep.graphql.server import handle

logger = Logger(service="chatkeep-graphql")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict, context: object) -> dict:
    return handle(event)
