"""Starter sessions (one per user and agent slug) and the user's home container: ChatRepository's starter part,
over DynamoDB. A pointer item names the user's current starter session; the session carries the pointer's key
(`starter_key`), so the stream function's cascade can delete the pointer with the session."""

from __future__ import annotations

from typing import Any

from chatkeep.models import Container, Session
from chatkeep.repository import keys
from chatkeep.repository.base import IdCollision
from chatkeep.repository.codec import from_item, to_av, to_item
from chatkeep.repository.errors import TransactionCancelled
from chatkeep.repository.items import container_key, container_to_item, record_shards, session_to_item
from chatkeep.repository.table import ChatTable


class StarterAccess(ChatTable):
    def get_starter(self, ws: str, sub: str, slug: str | None) -> tuple[int | None, Session | None]:
        """(session id the pointer names, the session if it is still there)."""
        resp = self._call("get_item", TableName=self.table_name, ConsistentRead=True,
                          Key={"pk": {"S": keys.user_pk(ws, sub)}, "sk": {"S": keys.starter_sk(slug)}})
        item = resp.get("Item")
        if not item:
            return None, None
        sid = int(from_item(item)["sid"])
        return sid, self.get_session(ws, sid)

    def get_home_container(self, ws: str, sub: str) -> int | None:
        resp = self._call("get_item", TableName=self.table_name, ConsistentRead=True,
                          Key={"pk": {"S": keys.user_pk(ws, sub)}, "sk": {"S": keys.HOME_SK}})
        item = resp.get("Item")
        return int(from_item(item)["cid"]) if item else None

    def claim_home_container(self, ws: str, sub: str, container: Container) -> int:
        """Create the user's home container and point to it; a concurrent claim wins: use its container."""
        try:
            self._call("transact_write_items", TransactItems=[
                {"Put": {"TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                         "Item": to_item({"pk": keys.user_pk(ws, sub), "sk": keys.HOME_SK, "type": "home",
                                          "ws": ws, "cid": container.id})}},
                {"Put": {"TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                         "Item": container_to_item(container)}},
            ])
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                existing = self.get_home_container(ws, sub)
                if existing is not None:
                    return existing
            if cancelled.failed(1):
                raise IdCollision from cancelled
            cancelled.unmapped()
        return container.id

    def create_starter(self, session: Session, *, sub: str, slug: str | None, replace_sid: int | None) -> bool:
        """Write the pointer and the session together (the session marked with the pointer's key). False when
        another call's pointer won the race."""
        ws = session.workspace_id
        pk, sk = keys.user_pk(ws, sub), keys.starter_sk(slug)
        session.starter_key = f"{pk}|{sk}"  # chatkeep.repository.stream_store.parse_starter_key reads it back
        pointer: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": to_item({"pk": pk, "sk": sk, "type": "starter", "ws": ws, "sid": session.id}),
        }
        if replace_sid is None:
            pointer["ConditionExpression"] = "attribute_not_exists(pk)"
        else:  # the session it named is gone: replace it, unless someone else already did
            pointer["ConditionExpression"] = "sid = :old"
            pointer["ExpressionAttributeValues"] = {":old": to_av(replace_sid)}
        home = record_shards({  # the home container exists: claim_home_container wrote it
            "TableName": self.table_name, "Key": container_key(ws, session.container_id),
            "ConditionExpression": "attribute_exists(pk)"}, [session.id])
        try:
            self._call("transact_write_items", TransactItems=[
                {"Put": pointer},
                {"Put": {"TableName": self.table_name, "Item": session_to_item(session),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Update": home},
            ])
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                return False
            if cancelled.failed(1):
                raise IdCollision from cancelled
            if cancelled.conflict:
                return False
            cancelled.unmapped()
        return True
