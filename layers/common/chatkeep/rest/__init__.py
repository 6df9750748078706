"""REST API (/v1): Powertools APIGatewayHttpResolver (app), one Router per resource (chatkeep.rest.routers),
pydantic request/response models (schemas), request validation (validation), route parameters and the caller
(params), domain -> JSON (shaping), JSON responses (responses), one error map (errors), idempotency keys
(idempotency). Routers depend on the leaf modules only; nothing below imports a router or the app."""
