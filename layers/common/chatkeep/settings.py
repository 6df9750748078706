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
        }
        values = {field: env[var] for field, var in mapping.items() if env.get(var) not in (None, "")}
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


def reset() -> None:
    """Forget the cached settings (tests and the local runtime change the environment)."""
    get_settings.cache_clear()
