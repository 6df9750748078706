"""Pushing to WebSocket clients through the stage's @connections API (`WEBSOCKET_MANAGEMENT_ENDPOINT`; locally the
emulator's, so this code is the same in AWS). A connection that is gone (GoneException, 410) is told apart from a
failed push: the caller forgets the former and counts the latter; neither raises."""

from __future__ import annotations

import enum
from typing import Any

from chatkeep import aws
from chatkeep.observability import logger
from chatkeep.settings import Settings, get_settings


class Pushed(enum.StrEnum):
    OK = "ok"
    GONE = "gone"  # the client disconnected (or never was): forget the connection
    FAILED = "failed"  # throttled, too large, unreachable...: this push is lost


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class Pusher:
    def __init__(self, settings: Settings | None = None, client: Any = None) -> None:
        self.settings = settings or get_settings()
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            endpoint = self.settings.websocket_management_endpoint
            if not endpoint:
                raise RuntimeError("WEBSOCKET_MANAGEMENT_ENDPOINT is not set")
            self._client = aws.management_api(endpoint)
        return self._client

    def post(self, connection_id: str, data: bytes) -> Pushed:
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        except Exception as exc:  # noqa: BLE001 - a push never fails its caller
            code = _error_code(exc)
            if code == "GoneException":
                return Pushed.GONE
            logger.warning("push failed", extra={"connection_id": connection_id, "error": code or type(exc).__name__,
                                                 "bytes": len(data)})
            return Pushed.FAILED
        return Pushed.OK

    def disconnect(self, connection_id: str) -> Pushed:
        """Close the socket (API Gateway closes it with 1000; $disconnect follows)."""
        try:
            self.client.delete_connection(ConnectionId=connection_id)
        except Exception as exc:  # noqa: BLE001
            if _error_code(exc) == "GoneException":
                return Pushed.GONE
            logger.warning("disconnect failed", extra={"connection_id": connection_id,
                                                       "error": _error_code(exc) or type(exc).__name__})
            return Pushed.FAILED
        return Pushed.OK


__all__ = ["Pushed", "Pusher"]
