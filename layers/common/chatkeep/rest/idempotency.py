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

def _execute(request: dict[str, Any], run: Callable[[], tuple[int, Any]]) -> dict[str, Any]:
    status, body = run()
    return {"status": status, "body": body}


def _mark_replay(response: Any, record: Any) -> Any:
    return {**response, "replayed": True}


def _idempotent() -> tuple[Any, Any]:
    """(config, wrapped _execute), built once per table and client (tests and the local runtime reset them)."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from chatkeep import aws

    client = aws.client("dynamodb")  # our factory: moto and the local runtime point it elsewhere
    table = get_settings().idempotency_table_name
    key = (table, id(client))
    built = _layers.get(key)
    if built is None:
        _layers.clear()
        config = IdempotencyConfig(
            event_key_jmespath="key", payload_validation_jmespath="payload", raise_on_no_idempotency_key=True,
            expires_after_seconds=EXPIRES_AFTER_SECONDS, hash_function="sha256", response_hook=_mark_replay,
        )
        layer = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
        built = _layers[key] = (config, idempotent_function(
            _execute, data_keyword_argument="request", persistence_store=layer, config=config, key_prefix=KEY_PREFIX))
    return built


def run_once(principal: Principal, route: str, key: str, payload: dict[str, Any],
             run: Callable[[], tuple[int, Any]], lambda_context: Any = None) -> tuple[int, Any, bool]:
    """(status, body, replayed). Raises IdempotencyKeyReused / IdempotencyInProgress / ServiceUnavailable."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    from chatkeep.errors import ServiceUnavailable
    from chatkeep.rest.errors import IdempotencyInProgress, IdempotencyKeyReused

    config, wrapped = _idempotent()
    config.register_lambda_context(lambda_context)  # lets Powertools expire an in-progress record at the timeout
    request = {"key": [principal.workspace_id, principal.sub, route, key], "payload": payload}
    try:
        result = wrapped(request=request, run=run)
    except IdempotencyValidationError:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body; use a new key") from None
    except IdempotencyAlreadyInProgressError:
        raise IdempotencyInProgress(
            "a request with this Idempotency-Key is still in progress; retry shortly") from None
    except IdempotencyPersistenceLayerError as exc:
        raise ServiceUnavailable("the idempotency store is unavailable: nothing was written, retry") from exc
    return int(result["status"]), result["body"], bool(result.get("replayed"))
