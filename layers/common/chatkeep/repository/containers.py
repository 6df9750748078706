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

    def count_sessions(self, ws: str, cid: int, now: float, status: str | None = None, *,
                       container: Container | None = None) -> int:
        """A Select=COUNT Query of each gsi1 key of the container that can hold sessions (its own key and the
        activity keys of its recorded shards), in parallel. `container`: already read (else a GetItem)."""
        container = container or self.get_container(ws, cid)
        if container is None:
            return 0
        values: dict[str, Any] = {":s": to_av("session")}
        flt = f"#type = :s AND {self._session_filter(now, status, values)}"

        def count(gpk: str) -> int:
            total, start = 0, None
            while True:
                kwargs: dict[str, Any] = dict(
                    TableName=self.table_name, IndexName=GSI1, KeyConditionExpression="gsi1pk = :g",
                    FilterExpression=flt, ExpressionAttributeValues={**values, ":g": to_av(gpk)},
                    ExpressionAttributeNames={"#type": "type"}, Select="COUNT",
                )
                if start:
                    kwargs["ExclusiveStartKey"] = start
                resp = self._call("query", **kwargs)
                total += resp["Count"]
                start = resp.get("LastEvaluatedKey")
                if not start:
                    return total

        return sum(self.in_parallel(count, keys.activity_pks(ws, cid, container.session_shards)))

    def list_sessions(
        self, ws: str, cid: int, now: float, *, skip: int, limit: int, status: str | None = None,
        cursor: str | None = None,
    ) -> SessionListing:
        """A container's sessions are spread over ACTIVITY_SHARDS gsi1 keys by session id (so are its activity
        writes); its own key holds the container item (it sorts first: the owner check) and any session written
        before the shards. First the own key (the container item names the shards its sessions are in), then
        those activity keys in parallel; each key is read for a whole page (`skip + limit + 1`), and the page is
        the newest of what they returned. With a cursor the container is read first (GetItem), then every key
        at once."""
        values: dict[str, Any] = {":c": to_av("container")}
        flt = f"#type = :c OR ({self._session_filter(now, status, values)})"
        condition = "gsi1pk = :g"
        container: Container | None = None
        if cursor:
            values[":below"] = to_av(start_of(cursor)[0])
            condition += " AND gsi1sk < :below"
            container = self.get_container(ws, cid)
            if container is None:
                return SessionListing(None, [], False, None, 0)
        wanted = skip + limit + 1  # one more than the page tells whether there is more

        def newest(gpk: str) -> tuple[list[dict[str, Any]], bool]:
            """Up to `wanted` items of one key (and the container item), and whether the key has more."""
            items: list[dict[str, Any]] = []
            start: dict[str, Any] | None = None
            while True:
                kwargs: dict[str, Any] = dict(
                    TableName=self.table_name, IndexName=GSI1, KeyConditionExpression=condition,
                    FilterExpression=flt, ExpressionAttributeValues={**values, ":g": to_av(gpk)},
                    ExpressionAttributeNames={"#type": "type"}, ScanIndexForward=False,
                    Limit=wanted - len(items) + 1,  # + 1: the container item may be among them
                )
                if start:
                    kwargs["ExclusiveStartKey"] = start
                resp = self._call("query", **kwargs)
                items += resp.get("Items", [])
                start = resp.get("LastEvaluatedKey")
                sessions = sum(1 for i in items if item_type(i) != "container")
                if sessions >= wanted or not start:
                    return items, start is not None

        own, *shard_keys = keys.activity_pks(ws, cid, container.session_shards if container else None)
        if container is None:  # the own key first: its container item names the keys to read
            first = newest(own)
            results = [first]
            head = next((i for i in first[0] if item_type(i) == "container"), None)
            if head is None:
                return SessionListing(None, [], False, None, 0)
            container = container_from_item(head)
            shard_keys = keys.activity_pks(ws, cid, container.session_shards)[1:]
            results += self.in_parallel(newest, shard_keys)
        else:
            results = self.in_parallel(newest, [own, *shard_keys])
        positioned: list[tuple[str, Session]] = []  # (gsi1sk, session): the merge order
        more = False
        for items, key_has_more in results:
            more = more or key_has_more
            positioned += [(item["gsi1sk"]["S"], session_from_item(item))
                           for item in items if item_type(item) != "container"]
        positioned.sort(key=lambda p: p[0], reverse=True)
        found = [session for _, session in positioned]
        exact_total = None if (more or cursor) else len(found)
        page = found[skip:skip + limit]
        has_more = len(found) > skip + limit
        next_cursor = cursor_after(page[-1]) if has_more and page else None
        return SessionListing(container, page, has_more, next_cursor, exact_total)
