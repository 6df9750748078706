"""GraphqlApiFunction: POST /graphql (API Gateway HTTP API, payload 2.0)."""

from chatkeep.aws import prewarm
from chatkeep.graphql.server import handle, schema
from chatkeep.observability import flush_metrics, inject_http_context

schema()  # built during init (and captured by SnapStart), not on the first request
prewarm()  # the DynamoDB client too, when init is off the request path (SnapStart, provisioned)


@inject_http_context
@flush_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return handle(event)
