"""`Idempotency-Key` on POSTs, with Powertools idempotency over the IdempotencyTable (key `id`, TTL
`expiration`).

The record key is a hash of (workspace, sub, route, header key): one caller's keys never collide with
another's. The payload validated against the first call is (path ids, body): the same key with another
body (or on another channel/session) answers 422 `idempotency_key_reused`. What is stored is the first
response (status and JSON body); a retry within 24 h gets it back (with `Idempotent-Replayed: true`) and
the chat table is not touched. Failed calls (4xx/5xx from a raised error) are not stored: Powertools
deletes the in-progress record, so a retry runs again. Imported only by POST routes that carry a key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatkeep.auth import Principal
from chatkeep.settings import get_settings

EXPIRES_AFTER_SECONDS = 24 * 3600
KEY_PREFIX = "chatkeep-rest"

_layers: dict[tuple[str, int], Any] = {}
_lambda_context: Any = None


def register_lambda_context(context: Any) -> None:
    """Lets Powertools expire an in-progress record when the invocation times out (not after 24 h)."""
    global _lambda_context
    _lambda_context = context


def _persistence() -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from chatkeep import aws

    client = aws.client("dynamodb")  # our factory: moto and the local runtime point it elsewhere
    table = get_settings().idempotency_table_name
    key = (table, id(client))
    layer = _layers.get(key)
    if layer is None:
        _layers.clear()
        layer = _layers[key] = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
    return layer


def run_once(principal: Principal, route: str, key: str, payload: dict[str, Any],
             run: Callable[[], tuple[int, Any]]) -> tuple[int, Any, bool]:
    """(status, body, replayed). Raises IdempotencyKeyReused / IdempotencyInProgress / ServiceUnavailable."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    from chatkeep.errors import ServiceUnavailable
    from chatkeep.rest.errors import IdempotencyInProgress, IdempotencyKeyReused

    def mark_replay(response: Any, record: Any) -> Any:
        return {**response, "replayed": True}

    config = IdempotencyConfig(
        event_key_jmespath="key", payload_validation_jmespath="payload", raise_on_no_idempotency_key=True,
        expires_after_seconds=EXPIRES_AFTER_SECONDS, hash_function="sha256", response_hook=mark_replay,
    )
    if _lambda_context is not None:
        config.register_lambda_context(_lambda_context)

    def execute(request: dict[str, Any]) -> dict[str, Any]:
        status, body = run()
        return {"status": status, "body": body}

    wrapped = idempotent_function(execute, data_keyword_argument="request", persistence_store=_persistence(),
                                  config=config, key_prefix=KEY_PREFIX)
    request = {"key": [principal.workspace_id, principal.sub, route, key], "payload": payload}
    try:
        result = wrapped(request=request)
    except IdempotencyValidationError:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body; use a new key") from None
    except IdempotencyAlreadyInProgressError:
        raise IdempotencyInProgress(
            "a request with this Idempotency-Key is still in progress; retry shortly") from None
    except IdempotencyPersistenceLayerError as exc:
        raise ServiceUnavailable("the idempotency store is unavailable: nothing was written, retry") from exc
    return int(result["status"]), result["body"], bool(result.get("replayed"))
