"""The one map from failures to HTTP: `{"error": {"code", "message"}}` with the status of the failure.

- domain errors (chatkeep.errors) carry their own `status` and `rest_code`;
- a body that is not JSON, or a malformed id in the path or query -> 400;
- other request validation failures (Powertools RequestValidationError) -> 422 `validation_error`;
- an idempotency key reused with another body -> 422 `idempotency_key_reused`;
- anything else -> 500 `internal_error`, message masked (the details go to the log, never to the client)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from chatkeep.errors import ChatkeepError
from chatkeep.observability import logger
from chatkeep.rest.responses import json_response
from chatkeep.rest.schemas import ErrorBody, GatewayError

# Query parameters that carry ids (or a cursor): malformed ones are a 400 like malformed path ids.
ID_QUERY_PARAMS = frozenset({"after", "before", "cursor"})


class UnsupportedMediaType(ChatkeepError):
    code, rest_code, status = "BAD_USER_INPUT", "unsupported_media_type", 415


class IdempotencyKeyReused(ChatkeepError):
    code, rest_code, status = "BAD_USER_INPUT", "idempotency_key_reused", 422


class IdempotencyInProgress(ChatkeepError):
    code, rest_code, status = "CONFLICT", "idempotency_key_in_progress", 409


_DESCRIPTIONS = {
    400: "Malformed request: the body is not JSON, or an id in the path or query is malformed",
    401: "Missing or invalid bearer token",
    403: "Not allowed (service scope needed, or X-Workspace-Id does not match the token)",
    404: "Not found (or not yours: another workspace's or another user's objects read as not found)",
    409: "Conflict: session_expired / session_closed (posting), slug taken, idempotency key in use",
    413: "A size limit was hit (metadata bytes, message content, initial_context, system_prompt)",
    415: "The body must be application/json",
    422: "Validation failed (the message says which field and which limit); idempotency_key_reused",
    429: "Too many requests",
    500: "Internal error (details are logged, not returned)",
    503: "The data store is busy or unreachable; nothing was written, retry",
}
COMMON = (400, 401, 403, 404, 422, 429, 500, 503)
# Statuses API Gateway may answer itself, with its own body `{"message": "..."}`.
GATEWAY_STATUSES = frozenset({401, 413, 429, 500, 503})


def declare(success: int, model: Any, description: str, *extra: int) -> dict[int, Any]:
    """The `responses=` of a route: its success, and every error status it can return with ErrorBody."""
    responses: dict[int, Any] = {}
    if model is None:
        responses[success] = {"description": description}
    else:
        responses[success] = {"description": description, "content": {"application/json": {"model": model}}}
    for status in sorted({*COMMON, *extra}):
        model = ErrorBody | GatewayError if status in GATEWAY_STATUSES else ErrorBody
        responses[status] = {"description": _DESCRIPTIONS[status],
                             "content": {"application/json": {"model": model}}}
    return responses


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def from_domain(exc: ChatkeepError) -> Response:
    if exc.status >= 500:
        logger.warning("request failed", extra={"code": exc.rest_code, "error": exc.message})
    headers = {"Retry-After": "1"} if exc.status in (429, 503) else None
    return error_response(exc.status, exc.rest_code, exc.message, headers)


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part != "body" or len(loc) == 1) or "body"


def from_validation(errors: list[dict[str, Any]]) -> Response:
    """Powertools RequestValidationError -> 400 (not JSON / malformed ids) or 422 (everything else). The errors'
    messages are already plain words (chatkeep.rest.explain, called by chatkeep.rest.validation)."""
    for e in errors:
        if e.get("type") == "json_invalid":
            why = str((e.get("ctx") or {}).get("error") or "")
            detail = f": {why}" if why.startswith("nested") else ""  # the parser's other messages say little
            return error_response(400, "malformed_json", f"the request body is not valid JSON{detail}")
    parts = []
    for e in errors[:5]:
        where = e.get("where") or _where(tuple(e.get("loc") or ()))
        parts.append(f"{where}: {e.get('msg') or e.get('type') or 'invalid'}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    if errors and all(_is_id(e.get("loc") or ()) for e in errors):
        return error_response(400, "bad_request", "; ".join(parts) + more)
    return error_response(422, "validation_error", "; ".join(parts) + more)


def _is_id(loc: tuple[Any, ...]) -> bool:
    return bool(loc) and (loc[0] == "path" or (loc[0] == "query" and len(loc) > 1 and loc[1] in ID_QUERY_PARAMS))


def internal(exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")
