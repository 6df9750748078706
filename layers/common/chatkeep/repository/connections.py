"""The connections table (docs/live-updates.md): the live-updates API's connections and their subscriptions.

Each WebSocket message is its own Lambda invocation, and invocations of one connection may run concurrently and out
of order, so every change of a connection's state is one conditional write:

    pk = C#{connectionId}   sk = C              the connection: connected_at, init_at (its one connection_init),
                                                acked + the caller once the token was verified, expires_at (TTL)
    pk = C#{connectionId}   sk = S#{opId}       a subscription: topic (GSI by_topic), document, variables, the
                                                caller; or, once completed by the client, a tombstone without topic

`at` on a subscription item is the API Gateway receive time (ms) of the last subscribe or complete that wrote it:
a subscribe never overwrites a later complete of the same id, nor a complete a later subscribe (they may be run in
either order). Every item expires with its connection (API Gateway closes a connection after 2 h; $disconnect is
best effort). Fan-out reads the subscribers of one topic from the sparse GSI `by_topic`, never all connections.
"""

from __future__ import annotations

import enum
from typing import Any

from chatkeep.auth import Principal
from chatkeep.models import Connection, Subscription
from chatkeep.repository import keys
from chatkeep.repository.batch import TableAccess
from chatkeep.repository.codec import from_item, to_av, to_item
from chatkeep.repository.errors import TransactionCancelled, is_condition_refused, refused_item

BY_TOPIC_INDEX = "by_topic"
LIVE, COMPLETED = "live", "completed"


class InitClaim(enum.StrEnum):
    CLAIMED = "claimed"  # the first connection_init of the connection
    AGAIN = "again"  # a connection_init was claimed before: 4429
    GONE = "gone"  # no such connection (closed, or never opened)


class Subscribed(enum.StrEnum):
    SUBSCRIBED = "subscribed"
    DUPLICATE = "duplicate"  # a live subscription has this id: 4409
    COMPLETED = "completed"  # the client completed this id after it subscribed (the messages came out of order)
    GONE = "gone"  # the connection is gone, or not acknowledged


def _connection_key(connection_id: str) -> dict[str, Any]:
    return {"pk": {"S": keys.connection_pk(connection_id)}, "sk": {"S": keys.CONNECTION_SK}}


def _subscription_key(connection_id: str, subscription_id: str) -> dict[str, Any]:
    return {"pk": {"S": keys.connection_pk(connection_id)}, "sk": {"S": keys.subscription_sk(subscription_id)}}


def connection_from_item(item: dict[str, Any]) -> Connection:
    data = from_item(item)
    return Connection(
        id=data["pk"].removeprefix("C#"), connected_at=float(data.get("connected_at", 0)),
        expires_at=int(data.get("expires_at", 0)), init_at=data.get("init_at"), acked=bool(data.get("acked")),
        sub=data.get("sub"), workspace_id=data.get("ws"), name=data.get("name"),
        scopes=tuple(data.get("scopes") or ()), is_service=bool(data.get("svc")),
        token_expires_at=float(data.get("token_exp") or 0))


def subscription_from_item(item: dict[str, Any]) -> Subscription:
    data = from_item(item)
    return Subscription(
        connection_id=data["pk"].removeprefix("C#"), id=data["sk"].removeprefix("S#"), topic=data["topic"],
        query=data["query"], variables=data.get("variables"), operation_name=data.get("op"), sub=data["sub"],
        is_service=bool(data.get("svc")), token_expires_at=float(data.get("token_exp") or 0),
        expires_at=int(data.get("expires_at", 0)))


class ConnectionStore(TableAccess):
    settings_table = "connections_table_name"


    # ------------------------------------------------------------------ the connection

    def open(self, connection_id: str, *, connected_at: float, expires_at: int) -> None:
        """$connect: the connection's record (replaces any leftover of the same id)."""
        self._call("put_item", TableName=self.table_name, Item=to_item({
            "pk": keys.connection_pk(connection_id), "sk": keys.CONNECTION_SK, "connected_at": connected_at,
            "expires_at": expires_at}))

    def claim_init(self, connection_id: str, *, at: float) -> InitClaim:
        """connection_init: only the first one of a connection is claimed, whatever order they run in."""
        try:
            self._call("update_item", TableName=self.table_name, Key=_connection_key(connection_id),
                       UpdateExpression="SET init_at = :at",
                       ConditionExpression="attribute_exists(pk) AND attribute_not_exists(init_at)",
                       ExpressionAttributeValues={":at": to_av(at)}, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except Exception as exc:
            if not is_condition_refused(exc):
                raise
            return InitClaim.AGAIN if refused_item(exc) else InitClaim.GONE
        return InitClaim.CLAIMED

    def acknowledge(self, connection_id: str, principal: Principal, *, token_expires_at: float) -> bool:
        """The token was verified: the connection now holds its caller. False when the connection is gone."""
        values = {":sub": principal.sub, ":ws": principal.workspace_id, ":scopes": sorted(principal.scopes),
                  ":svc": principal.is_service, ":exp": token_expires_at, ":yes": True}
        names = {"#name": "name", "#sub": "sub"}
        expression = "SET acked = :yes, #sub = :sub, ws = :ws, scopes = :scopes, svc = :svc, token_exp = :exp"
        if principal.name:
            expression += ", #name = :name"
            values[":name"] = principal.name
        else:
            expression += " REMOVE #name"
        try:
            self._call("update_item", TableName=self.table_name, Key=_connection_key(connection_id),
                       UpdateExpression=expression, ConditionExpression="attribute_exists(pk)",
                       ExpressionAttributeNames=names,
                       ExpressionAttributeValues={k: to_av(v) for k, v in values.items()})
        except Exception as exc:
            if is_condition_refused(exc):
                return False
            raise
        return True

    def get(self, connection_id: str) -> Connection | None:
        resp = self._call("get_item", TableName=self.table_name, ConsistentRead=True,
                          Key=_connection_key(connection_id))
        item = resp.get("Item")
        return connection_from_item(item) if item else None

    def forget(self, connection_id: str) -> int:
        """The connection closed (or is gone): its record first (so no subscribe can start after this), then every
        subscription it has, read consistently. Returns how many items were deleted."""
        self._call("delete_item", TableName=self.table_name, Key=_connection_key(connection_id))
        requests: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name, "ConsistentRead": True, "ProjectionExpression": "pk, sk",
            "KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {
                ":pk": to_av(keys.connection_pk(connection_id))}}
        while True:
            resp = self._call("query", **kwargs)
            requests += [{"DeleteRequest": {"Key": item}} for item in resp.get("Items", [])]
            if not resp.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        if requests:
            self.batch_write(requests)
        return len(requests) + 1

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, subscription: Subscription, *, at: int) -> Subscribed:
        """One transaction: the connection is (still) acknowledged, and no live subscription has this id, and no
        complete of it was received after this subscribe."""
        s = subscription
        item = to_item({
            "pk": keys.connection_pk(s.connection_id), "sk": keys.subscription_sk(s.id), "state": LIVE,
            "topic": s.topic, "query": s.query, "variables": s.variables, "op": s.operation_name, "sub": s.sub,
            "svc": s.is_service, "token_exp": s.token_expires_at, "expires_at": s.expires_at, "at": at})
        try:
            self._call("transact_write_items", TransactItems=[
                {"ConditionCheck": {
                    "TableName": self.table_name, "Key": _connection_key(s.connection_id),
                    "ConditionExpression": "acked = :yes", "ExpressionAttributeValues": {":yes": {"BOOL": True}}}},
                {"Put": {
                    "TableName": self.table_name, "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk) OR (#state = :done AND #at < :at)",
                    "ExpressionAttributeNames": {"#state": "state", "#at": "at"},
                    "ExpressionAttributeValues": {":done": to_av(COMPLETED), ":at": to_av(at)},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            ])
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                return Subscribed.GONE
            if cancelled.failed(1):
                old = cancelled.item(1) or self._subscription_item(s.connection_id, s.id) or {}
                return Subscribed.DUPLICATE if from_item(old).get("state") == LIVE else Subscribed.COMPLETED
            cancelled.unmapped()
        return Subscribed.SUBSCRIBED

    def _subscription_item(self, connection_id: str, subscription_id: str) -> dict[str, Any] | None:
        resp = self._call("get_item", TableName=self.table_name, ConsistentRead=True,
                          Key=_subscription_key(connection_id, subscription_id))
        item = resp.get("Item")
        return item if isinstance(item, dict) else None

    def complete(self, connection_id: str, subscription_id: str, *, at: int, expires_at: int) -> bool:
        """The client completed a subscription: a tombstone replaces it (so a subscribe of the same id received
        before this complete, and run after it, is not started). False when a later subscribe of the id holds it."""
        try:
            self._call("put_item", TableName=self.table_name, Item=to_item({
                "pk": keys.connection_pk(connection_id), "sk": keys.subscription_sk(subscription_id),
                "state": COMPLETED, "at": at, "expires_at": expires_at}),
                ConditionExpression="attribute_not_exists(pk) OR #at <= :at",
                ExpressionAttributeNames={"#at": "at"}, ExpressionAttributeValues={":at": to_av(at)})
        except Exception as exc:
            if is_condition_refused(exc):
                return False
            raise
        return True

    def remove_subscription(self, connection_id: str, subscription_id: str) -> None:
        """The server completed a subscription (its session was deleted)."""
        self._call("delete_item", TableName=self.table_name, Key=_subscription_key(connection_id, subscription_id))

    def subscribers(self, topic: str, *, now: float) -> list[Subscription]:
        """The live subscriptions of a topic (a session's or a todo's key), from the GSI by_topic: work grows with
        the subscribers of that topic. Records past their TTL (DynamoDB deletes them late) are left out."""
        found: list[Subscription] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name, "IndexName": BY_TOPIC_INDEX,
            "KeyConditionExpression": "topic = :topic", "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": {":topic": to_av(topic), ":now": to_av(int(now))}}
        while True:
            resp = self._call("query", **kwargs)
            found += [subscription_from_item(item) for item in resp.get("Items", [])]
            if not resp.get("LastEvaluatedKey"):
                return found
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


__all__ = ["BY_TOPIC_INDEX", "ConnectionStore", "InitClaim", "Subscribed", "connection_from_item",
           "subscription_from_item"]
