"""Containers (todos, channels) and the sessions they list: ChatRepository's container part, over DynamoDB."""

from __future__ import annotations

from typing import Any

from chatkeep.models import Container, Session
from chatkeep.repository import keys
from chatkeep.repository.base import IdCollision, SessionListing
from chatkeep.repository.codec import to_av
from chatkeep.repository.cursor import cursor_after, start_of
from chatkeep.repository.errors import is_condition_refused
from chatkeep.repository.items import (
    container_from_item,
    container_key,
    container_to_item,
    item_type,
    session_from_item,
    session_key,
)
from chatkeep.repository.table import GSI1, ChatTable

STATUS_FILTERS = {
    "active": "attribute_not_exists(closed_at) AND exp > :now",
    "expired": "attribute_not_exists(closed_at) AND exp <= :now",
    "closed": "attribute_exists(closed_at)",
}


class ContainerAccess(ChatTable):
    def get_container(self, ws: str, cid: int) -> Container | None:
        resp = self._call("get_item", TableName=self.table_name, ConsistentRead=True,
                          Key=container_key(ws, cid))
        item = resp.get("Item")
        return container_from_item(item) if item else None

    def create_container(self, container: Container) -> None:
        item = container_to_item(container)
        try:
            self._call("put_item", TableName=self.table_name, Item=item,
                       ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            if is_condition_refused(exc):
                raise IdCollision from exc
            raise

    def _session_filter(self, now: float, status: str | None, values: dict[str, Any]) -> str:
        values[":now"] = to_av(int(now))
        cond = "purge_at > :now"
        if status:
            cond += f" AND {STATUS_FILTERS[status]}"
        return cond

    def count_sessions(self, ws: str, cid: int, now: float, status: str | None = None) -> int:
        values: dict[str, Any] = {":g": to_av(keys.container_pk(ws, cid)), ":s": to_av("session")}
        flt = f"#type = :s AND {self._session_filter(now, status, values)}"
        total, start = 0, None
        while True:
            kwargs: dict[str, Any] = dict(
                TableName=self.table_name, IndexName=GSI1, KeyConditionExpression="gsi1pk = :g",
                FilterExpression=flt, ExpressionAttributeValues=values, ExpressionAttributeNames={"#type": "type"},
                Select="COUNT",
            )
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = self._call("query", **kwargs)
            total += resp["Count"]
            start = resp.get("LastEvaluatedKey")
            if not start:
                return total

    def list_sessions(
        self, ws: str, cid: int, now: float, *, skip: int, limit: int, status: str | None = None,
        cursor: str | None = None,
    ) -> SessionListing:
        """One Query (descending activity) that also returns the container item, which sorts first."""
        gpk = keys.container_pk(ws, cid)
        values: dict[str, Any] = {":g": to_av(gpk), ":c": to_av("container")}
        flt = f"#type = :c OR ({self._session_filter(now, status, values)})"
        start: dict[str, Any] | None = None
        container: Container | None = None
        if cursor:
            gsi1sk, sid = start_of(cursor)
            start = {"gsi1pk": {"S": gpk}, "gsi1sk": {"S": gsi1sk}, **session_key(ws, sid)}
            container = self.get_container(ws, cid)
            if container is None:
                return SessionListing(None, [], False, None, 0)
        wanted = skip + limit + 1  # one more than the page tells whether there is more
        sessions: list[Session] = []
        while True:
            kwargs: dict[str, Any] = dict(
                TableName=self.table_name, IndexName=GSI1, KeyConditionExpression="gsi1pk = :g",
                FilterExpression=flt, ExpressionAttributeValues=values,
                ExpressionAttributeNames={"#type": "type"}, ScanIndexForward=False,
                Limit=wanted - len(sessions) + (0 if start else 1),
            )
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = self._call("query", **kwargs)
            for item in resp.get("Items", []):
                if item_type(item) == "container":
                    container = container_from_item(item)
                else:
                    sessions.append(session_from_item(item))
            start = resp.get("LastEvaluatedKey")
            if len(sessions) >= wanted or not start:
                break
        exact_total = None if (start or cursor) else len(sessions)
        page = sessions[skip:skip + limit]
        has_more = len(sessions) > skip + limit
        next_cursor = cursor_after(page[-1]) if has_more and page else None
        return SessionListing(container, page, has_more, next_cursor, exact_total)
