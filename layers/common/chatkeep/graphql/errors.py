"""One map from failures to GraphQL error codes (extensions.code). Domain errors keep their message;
anything else is masked as INTERNAL_SERVER_ERROR and logged with its stack (never returned)."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

from chatkeep.errors import ChatkeepError

logger = logging.getLogger("chatkeep.graphql")
MASKED = "Internal server error"


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = list(error.path)
    original = error.original_error
    extensions = dict(error.extensions or {})
    if isinstance(original, GraphQLError) and error.path is None and "code" not in extensions:
        # graphql-core >= 3.3 wraps a variable that does not coerce (wrong type, Int overflow, missing
        # required value) in a GraphQLError whose original_error is another GraphQLError. It has no path:
        # it is a request error, the client's fault, and its message is safe to show.
        extensions["code"] = "BAD_USER_INPUT"
        original = None
    if isinstance(original, ChatkeepError):
        extensions["code"] = original.code
        formatted["message"] = original.message
    elif original is not None:
        logger.exception("unhandled error in a resolver", exc_info=original)
        extensions = {"code": "INTERNAL_SERVER_ERROR"}
        formatted["message"] = MASKED
        if debug:
            extensions["exception"] = {"type": type(original).__name__, "message": str(original)}
    elif "code" not in extensions:
        # No original error and no code yet: a variable or argument that does not coerce.
        extensions["code"] = "BAD_USER_INPUT"
    formatted["extensions"] = extensions
    return formatted


def error_body(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}
