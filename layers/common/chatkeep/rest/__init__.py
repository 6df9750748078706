"""REST API (/v1): Powertools APIGatewayHttpResolver, one Router per resource (chatkeep.rest.routers),
pydantic request/response models (schemas), one error map (errors), idempotency keys (idempotency)."""
