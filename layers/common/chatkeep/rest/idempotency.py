"""`Idempotency-Key` on POSTs, with Powertools idempotency over the IdempotencyTable (key `id`, TTL
`expiration`).

The record key is a hash of (workspace, sub, route, header key): one caller's keys never collide with
another's. The payload validated against the first call is (path ids, body): the same key with another
body (or on another channel/session) answers 422 `idempotency_key_reused`. What is stored is the first
response (status and JSON body); a retry within 24 h gets it back (with `Idempotent-Replayed: true`) and
the chat table is not touched. Failed calls (4xx/5xx from a raised error) are not stored: Powertools
deletes the in-progress record, so a retry runs again. Powertools' idempotency utility is imported on the
first POST that carries a key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from pydantic import BaseModel

from chatkeep.auth import Principal
from chatkeep.errors import ServiceUnavailable
from chatkeep.rest.errors import IdempotencyInProgress, IdempotencyKeyReused
from chatkeep.rest.responses import json_response
from chatkeep.settings import get_settings

EXPIRES_AFTER_SECONDS = 24 * 3600
KEY_PREFIX = "chatkeep-rest"

# (config, wrapped _execute), built on the first keyed POST of the container; reset() forgets it.
_built: tuple[Any, Any] | None = None


def reset() -> None:
    """Forget the persistence layer (it holds the DynamoDB client and the table of the environment it was built
    in): tests and the local runtime call it, with the other modules' reset(), when they point chatkeep
    elsewhere."""
    global _built
    _built = None


def _execute(request: dict[str, Any], run: Callable[[], tuple[int, Any]]) -> dict[str, Any]:
    status, body = run()
    return {"status": status, "body": body}


def _mark_replay(response: Any, idempotent_data: Any) -> Any:
    return {**response, "replayed": True}


def _idempotent() -> tuple[Any, Any]:
    """(config, wrapped _execute), built once per container."""
    global _built
    if _built is None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        from chatkeep import aws

        config = IdempotencyConfig(
            event_key_jmespath="key", payload_validation_jmespath="payload", raise_on_no_idempotency_key=True,
            expires_after_seconds=EXPIRES_AFTER_SECONDS, hash_function="sha256", response_hook=_mark_replay,
        )
        # Our client factory: moto and the local runtime point it elsewhere.
        layer = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table_name,
                                         boto3_client=aws.dynamodb())
        _built = (config, idempotent_function(
            _execute, data_keyword_argument="request", persistence_store=layer, config=config, key_prefix=KEY_PREFIX))
    return _built


def run_once(principal: Principal, route: str, key: str, payload: dict[str, Any],
             run: Callable[[], tuple[int, Any]], lambda_context: Any = None) -> tuple[int, Any, bool]:
    """(status, body, replayed). Raises IdempotencyKeyReused / IdempotencyInProgress / ServiceUnavailable."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

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


def created(p: Principal, route: str, idempotency_key: str | None, run: Callable[[], tuple[int, Any]],
            body: BaseModel | None = None, **path_ids: int) -> Response:
    """Answer a POST: `run()` -> (status, body); with an Idempotency-Key, at most once per key and request
    (the request: its path ids and body, built only when there is a key)."""
    if idempotency_key is None:
        status, reply = run()
        return json_response(status, reply)
    payload = path_ids if body is None else {**path_ids, "body": body.model_dump(mode="json")}
    status, reply, replayed = run_once(p, route, idempotency_key, payload, run, BaseRouter.lambda_context)
    return json_response(status, reply, {"Idempotent-Replayed": "true"} if replayed else None)
