"""Settings: one pydantic model read from the environment once per cold start."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    chat_table_name: str = Field(default="chatkeep-chat")
    search_table_name: str = Field(default="chatkeep-search")
    idempotency_table_name: str = Field(default="chatkeep-idempotency")
    session_idle_timeout_seconds: int = Field(default=86400, ge=60, le=30 * 86400)
    retention_days: int = Field(default=30, ge=1, le=3650)
    enable_introspection: bool = False
    # The JWT claim that carries the tenant (Cognito: custom:workspace_id).
    workspace_claim: str = "workspace_id"
    service_scope: str = "chatkeep/service"
    # Local runtime / tests only: point boto3 at moto or DynamoDB Local.
    dynamodb_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    debug: bool = False
    max_query_depth: int = 10
    max_query_cost: int = 5000
    # Agent turns (docs/agents.md)
    turn_queue_url: str | None = None
    allowed_model_ids: tuple[str, ...] = ()
    bedrock_endpoint_url: str | None = None  # local runtime: the stand-in model
    guardrail_id: str | None = None
    guardrail_version: str | None = None
    daily_token_quota: int = Field(default=0, ge=0)  # per workspace per day; 0: no cap
    turn_lease_seconds: int = Field(default=135, ge=10)  # the worker's timeout and a margin: a dead worker's turn
    model_read_timeout_seconds: int = Field(default=60, ge=1)
    model_max_attempts: int = Field(default=4, ge=1, le=10)
    # Live updates (docs/live-updates.md): the WebSocket API's connections and its @connections endpoint; the
    # token of a connection_init is verified as the HTTP API's JWT authorizer verifies a request's.
    connections_table_name: str | None = None
    websocket_management_endpoint: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()
    jwt_jwks_url: str | None = None  # default: <jwt_issuer>/.well-known/jwks.json

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        mapping = {
            "chat_table_name": "CHAT_TABLE_NAME",
            "search_table_name": "SEARCH_TABLE_NAME",
            "idempotency_table_name": "IDEMPOTENCY_TABLE_NAME",
            "session_idle_timeout_seconds": "SESSION_IDLE_TIMEOUT_SECONDS",
            "retention_days": "RETENTION_DAYS",
            "enable_introspection": "ENABLE_INTROSPECTION",
            "workspace_claim": "WORKSPACE_CLAIM",
            "service_scope": "SERVICE_SCOPE",
            "dynamodb_endpoint_url": "DYNAMODB_ENDPOINT_URL",
            "aws_region": "AWS_REGION",
            "debug": "CHATKEEP_DEBUG",
            "max_query_depth": "GRAPHQL_MAX_DEPTH",
            "max_query_cost": "GRAPHQL_MAX_COST",
            "turn_queue_url": "TURN_QUEUE_URL",
            "allowed_model_ids": "ALLOWED_MODEL_IDS",
            "bedrock_endpoint_url": "BEDROCK_ENDPOINT_URL",
            "guardrail_id": "GUARDRAIL_ID",
            "guardrail_version": "GUARDRAIL_VERSION",
            "daily_token_quota": "DAILY_TOKEN_QUOTA",
            "turn_lease_seconds": "TURN_LEASE_SECONDS",
            "model_read_timeout_seconds": "MODEL_READ_TIMEOUT_SECONDS",
            "model_max_attempts": "MODEL_MAX_ATTEMPTS",
            "connections_table_name": "CONNECTIONS_TABLE_NAME",
            "websocket_management_endpoint": "WEBSOCKET_MANAGEMENT_ENDPOINT",
            "jwt_issuer": "JWT_ISSUER",
            "jwt_audience": "JWT_AUDIENCE",
            "jwt_jwks_url": "JWT_JWKS_URL",
        }
        values: dict[str, object] = {field: env[var] for field, var in mapping.items()
                                     if env.get(var) not in (None, "")}
        for name in ("allowed_model_ids", "jwt_audience"):  # CloudFormation CommaDelimitedLists, joined
            if name in values:
                values[name] = tuple(m.strip() for m in str(values[name]).split(",") if m.strip())
        return cls.model_validate(values)

    def model_allowed(self, model_id: str) -> bool:
        return model_id in self.allowed_model_ids

    @property
    def live_updates(self) -> bool:
        """Whether this function can push live updates (it knows the connections table and @connections)."""
        return bool(self.connections_table_name and self.websocket_management_endpoint)

    @property
    def jwks_url(self) -> str | None:
        if self.jwt_jwks_url:
            return self.jwt_jwks_url
        return f"{self.jwt_issuer.rstrip('/')}/.well-known/jwks.json" if self.jwt_issuer else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


def reset() -> None:
    """Forget the cached settings (tests and the local runtime change the environment)."""
    get_settings.cache_clear()
