"""Domain errors. Each has a stable code; the API layers map them to HTTP statuses and GraphQL codes
in one place each (chatkeep.rest.errors, chatkeep.graphql.errors)."""

from __future__ import annotations


class ChatkeepError(Exception):
    code = "INTERNAL_SERVER_ERROR"
    rest_code = "internal_error"
    status = 500

    def __init__(self, message: str = "internal error") -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(ChatkeepError):
    code, rest_code, status = "UNAUTHENTICATED", "unauthorized", 401


class Forbidden(ChatkeepError):
    code, rest_code, status = "FORBIDDEN", "forbidden", 403


class NotFound(ChatkeepError):
    code, rest_code, status = "NOT_FOUND", "not_found", 404


class BadInput(ChatkeepError):
    """Well-formed but invalid input (REST 422, GraphQL BAD_USER_INPUT)."""

    code, rest_code, status = "BAD_USER_INPUT", "validation_error", 422


class PayloadTooLarge(ChatkeepError):
    code, rest_code, status = "BAD_USER_INPUT", "payload_too_large", 413


class Conflict(ChatkeepError):
    code, rest_code, status = "CONFLICT", "conflict", 409


class SessionExpired(Conflict):
    code, rest_code = "SESSION_EXPIRED", "session_expired"


class SessionClosed(Conflict):
    code, rest_code = "SESSION_CLOSED", "session_closed"


class TurnInProgress(Conflict):
    """The session's agent is still answering (a turn is queued or running): one turn at a time."""

    code, rest_code = "TURN_IN_PROGRESS", "turn_in_progress"


class ServiceUnavailable(ChatkeepError):
    """DynamoDB kept throttling or failing after retries: nothing was written, try again."""

    code, rest_code, status = "SERVICE_UNAVAILABLE", "service_unavailable", 503


class RateLimited(ChatkeepError):
    code, rest_code, status = "RATE_LIMITED", "rate_limited", 429
