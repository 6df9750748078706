"""RealtimeFunction: the WebSocket API's three routes, running graphql-transport-ws (chatkeep.realtime.protocol).

    $connect      the connection's record (its TTL: API Gateway closes it after 2 h); the subprotocol is echoed
    $disconnect   the record and its subscriptions are forgotten
    $default      one client message:
      connection_init  4408 if it comes more than INIT_TIMEOUT_SECONDS after the connect; 4429 if one was claimed
                       before (a conditional write); the token (`payload.authorization`, `Bearer ` optional) is
                       verified (4401 when it is not; 4403 when `payload["x-workspace-id"]` is not its workspace);
                       the connection is acknowledged with its caller, then `connection_ack`
      ping / pong      `pong` (with the ping's payload) / nothing
      subscribe        4401 before the ack; the operation is checked and authorized (an `error` message when it is
                       refused: invalid, a query or mutation, NOT_FOUND); then one transaction: still acknowledged,
                       no live subscription with this id (else 4409), no later complete of it
      complete         a tombstone replaces the subscription (so a subscribe run after it does not start)

Every message is its own invocation and they may run in any order, concurrently: all state is in the connections
table, changed by conditional writes. A connection_init that never comes cannot be timed out by a server that only
runs when a message arrives: such a socket can subscribe to nothing, and API Gateway closes it after 10 idle minutes.
"""

from __future__ import annotations

import time
from typing import Any

from chatkeep import clock
from chatkeep.auth import Principal, principal_from_claims
from chatkeep.errors import ChatkeepError, Forbidden
from chatkeep.models import Subscription
from chatkeep.observability import count, logger
from chatkeep.realtime import protocol
from chatkeep.realtime.protocol import Close
from chatkeep.realtime.push import Pushed, Pusher
from chatkeep.realtime.tokens import JwksVerifier, bearer, default_verifier
from chatkeep.repository.connections import ConnectionStore, InitClaim, Subscribed
from chatkeep.settings import Settings, get_settings

INIT_TIMEOUT_SECONDS = 10.0
CONNECTION_LIFETIME_SECONDS = 2 * 3600 + 300  # API Gateway's 2 h, and a margin: the records' TTL
OK = {"statusCode": 200}


def _offered_subprotocols(event: dict[str, Any]) -> list[str] | None:
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "sec-websocket-protocol" and isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
    return None


class RealtimeHandler:
    def __init__(self, *, store: ConnectionStore | None = None, pusher: Pusher | None = None,
                 verifier: JwksVerifier | None = None, service: Any = None, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = store or ConnectionStore(self.settings)
        self.pusher = pusher or Pusher(self.settings)
        self._verifier = verifier
        self._service = service

    @property
    def verifier(self) -> JwksVerifier:
        return self._verifier or default_verifier()

    @property
    def service(self) -> Any:
        if self._service is None:
            from chatkeep.service import default_service

            self._service = default_service()
        return self._service

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        context = event.get("requestContext") or {}
        kind, connection_id = context.get("eventType"), str(context.get("connectionId") or "")
        if kind == "CONNECT":
            return self.on_connect(event, connection_id, context)
        if kind == "DISCONNECT":
            self.store.forget(connection_id)
            return OK
        if event.get("isBase64Encoded"):
            self.close(connection_id, Close(protocol.BAD_REQUEST, "Invalid message received: binary frame"))
            return OK
        try:
            self.on_message(connection_id, context, protocol.parse(event.get("body")))
        except Close as close:
            self.close(connection_id, close)
        return OK

    # ------------------------------------------------------------------ routes

    def on_connect(self, event: dict[str, Any], connection_id: str, context: dict[str, Any]) -> dict[str, Any]:
        offered = _offered_subprotocols(event)
        if offered is not None and protocol.SUBPROTOCOL not in offered:
            return {"statusCode": 400, "body": f"Subprotocol not acceptable: use {protocol.SUBPROTOCOL}"}
        connected_at = float(context.get("connectedAt") or clock.now() * 1000) / 1000
        self.store.open(connection_id, connected_at=connected_at,
                        expires_at=int(connected_at + CONNECTION_LIFETIME_SECONDS))
        if offered is None:
            return OK
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": protocol.SUBPROTOCOL}}

    def on_message(self, connection_id: str, context: dict[str, Any], message: protocol.ClientMessage) -> None:
        at_ms = int(context.get("requestTimeEpoch") or clock.now() * 1000)
        if message.type == "connection_init":
            self.init(connection_id, context, message.payload or {}, at_ms)
        elif message.type == "ping":
            self.push(connection_id, protocol.pong(message.payload))
        elif message.type == "subscribe":
            assert message.id is not None and message.payload is not None
            self.subscribe(connection_id, message.id, message.payload, at_ms)
        elif message.type == "complete":
            assert message.id is not None
            self.store.complete(connection_id, message.id, at=at_ms,
                                expires_at=int(at_ms / 1000 + CONNECTION_LIFETIME_SECONDS))
        # pong: nothing to do

    def init(self, connection_id: str, context: dict[str, Any], payload: dict[str, Any], at_ms: int) -> None:
        connected_ms = context.get("connectedAt")
        if isinstance(connected_ms, int | float) and at_ms - connected_ms > INIT_TIMEOUT_SECONDS * 1000:
            raise Close(protocol.INIT_TIMEOUT, "Connection initialisation timeout")
        claim = self.store.claim_init(connection_id, at=at_ms / 1000)
        if claim is InitClaim.AGAIN:
            raise Close(protocol.TOO_MANY_INITS, "Too many initialisation requests")
        if claim is InitClaim.GONE:
            return
        principal, expires_at = self.authenticate(payload)
        if self.store.acknowledge(connection_id, principal, token_expires_at=expires_at):
            self.push(connection_id, protocol.ack())
            count("LiveConnectionsAcknowledged")

    def authenticate(self, payload: dict[str, Any]) -> tuple[Principal, float]:
        """The caller of connection_init's token, verified as the HTTP API's authorizer verifies; Close otherwise."""
        raw = payload.get("authorization", payload.get("Authorization"))
        try:
            claims = self.verifier.verify(bearer(raw))
            principal = principal_from_claims(claims, self.settings,
                                              requested_workspace=payload.get("x-workspace-id"))
        except Forbidden as refused:
            raise Close(protocol.FORBIDDEN, f"Forbidden: {refused.message}") from None
        except ChatkeepError as refused:
            raise Close(protocol.UNAUTHORIZED, f"Unauthorized: {refused.message}") from None
        return principal, float(claims["exp"])

    def subscribe(self, connection_id: str, operation: str, payload: dict[str, Any], at_ms: int) -> None:
        from chatkeep.realtime.subscriptions import prepare

        connection = self.store.get(connection_id)
        if connection is None:
            return  # closed meanwhile
        if not connection.acked:
            raise Close(protocol.UNAUTHORIZED, "Unauthorized")
        if connection.token_expires_at <= clock.now():
            raise Close(protocol.UNAUTHORIZED, "Unauthorized: the token has expired")
        assert connection.sub is not None and connection.workspace_id is not None
        principal = Principal(sub=connection.sub, workspace_id=connection.workspace_id, name=connection.name,
                              scopes=frozenset(connection.scopes), is_service=connection.is_service)
        prepared = prepare(principal, payload, self.service)
        if prepared.topic is None:
            self.push(connection_id, protocol.error(operation, prepared.errors))
            return
        outcome = self.store.subscribe(Subscription(
            connection_id=connection_id, id=operation, topic=prepared.topic, query=payload["query"],
            variables=payload.get("variables"), operation_name=payload.get("operationName"), sub=principal.sub,
            is_service=principal.is_service, token_expires_at=connection.token_expires_at,
            expires_at=connection.expires_at), at=at_ms)
        if outcome is Subscribed.DUPLICATE:
            raise Close(protocol.SUBSCRIBER_EXISTS, f"Subscriber for {operation} already exists", operation)
        if outcome is Subscribed.SUBSCRIBED:
            count("LiveSubscriptions")

    # ------------------------------------------------------------------ pushing

    def push(self, connection_id: str, data: bytes) -> None:
        if self.pusher.post(connection_id, data) is Pushed.GONE:
            self.store.forget(connection_id)

    def close(self, connection_id: str, close: Close) -> None:
        """The close the protocol asks for, as API Gateway allows it: a last `error` message that names the code
        (protocol.close_notice), then DeleteConnection (API Gateway closes with 1000; $disconnect follows)."""
        logger.info("closing a connection", extra={"connection_id": connection_id, "close_code": close.code})
        count("LiveConnectionsClosed")
        self.store.forget(connection_id)
        self.pusher.post(connection_id, protocol.close_notice(close))
        self.pusher.disconnect(connection_id)


_handler: RealtimeHandler | None = None


def handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = RealtimeHandler()
    started = time.perf_counter()
    try:
        return _handler.handle(event)
    finally:
        logger.debug("websocket event", extra={"route": (event.get("requestContext") or {}).get("routeKey"),
                                               "ms": round((time.perf_counter() - started) * 1000, 1)})


def reset() -> None:
    """Forget the handler (it holds the settings, tables and clients it was built with)."""
    global _handler
    _handler = None


__all__ = ["CONNECTION_LIFETIME_SECONDS", "INIT_TIMEOUT_SECONDS", "RealtimeHandler", "handle", "reset"]
