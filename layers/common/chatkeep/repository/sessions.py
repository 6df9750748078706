"""Sessions: ChatRepository's session part, over DynamoDB. Every conditional write on a session turns a
refusal into its domain error from the item DynamoDB returns with it (ChatTable._refusal)."""

from __future__ import annotations

from typing import Any

from chatkeep.errors import NotFound, SessionClosed, SessionExpired
from chatkeep.models import Message, Session
from chatkeep.repository import keys
from chatkeep.repository.base import IdCollision
from chatkeep.repository.codec import to_av
from chatkeep.repository.errors import TransactionCancelled, is_condition_refused, refused_item
from chatkeep.repository.items import (
    agent_key,
    record_shards,
    session_from_item,
    session_key,
    session_to_item,
)
from chatkeep.repository.table import ChatTable

BATCH_GET_LIMIT = 100  # DynamoDB's limit per BatchGetItem


class SessionAccess(ChatTable):
    def create_session(self, session: Session, *, owner_condition: str | None, agent_id: int | None,
                       first_message: Message | None = None) -> None:
        """One transaction: the session, the container claim, the agent check (when given) and the first
        message with its id claim (when given: the session and its message land together or not at all)."""
        ws = session.workspace_id
        cpk = keys.container_pk(ws, session.container_id)
        names = {"#type": "type", "#owner": "owner"}
        values = {
            ":ctype": to_av("container"), ":ws": to_av(ws), ":cid": to_av(session.container_id),
            ":owner": to_av(session.owner), ":now": to_av(session.created_at), ":gpk": to_av(cpk),
            ":tilde": to_av(keys.CONTAINER_GSI_SK),
        }
        update = ("SET #type = :ctype, ws = :ws, cid = :cid, #owner = if_not_exists(#owner, :owner), "
                  "created_at = if_not_exists(created_at, :now), gsi1pk = :gpk, gsi1sk = :tilde")
        container_update: dict[str, Any] = record_shards({
            "TableName": self.table_name, "Key": {"pk": {"S": cpk}, "sk": {"S": keys.CONTAINER_SK}},
            "UpdateExpression": update, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        }, [session.id])
        if owner_condition is not None:
            # A user claims an unused container or writes to its own; anyone else's reads as not found.
            container_update["ConditionExpression"] = "attribute_not_exists(pk) OR #owner = :me"
            values[":me"] = to_av(owner_condition)
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table_name, "Item": session_to_item(session),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": container_update},
        ]
        if agent_id is not None:
            items.append(self._agent_exists(ws, agent_id))
        message_at = len(items)
        if first_message is not None:
            items.extend(self._message_puts(first_message))
        try:
            self._call("transact_write_items", TransactItems=items)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                if self._already_written(keys.session_pk(ws, session.id), keys.SESSION_SK,
                                         {"created_at": session.created_at, "owner": session.owner,
                                          "cid": session.container_id}):
                    return  # our own earlier attempt (its answer was lost; botocore sent it again)
                raise IdCollision from cancelled
            if cancelled.failed(1):
                raise NotFound("container not found") from cancelled
            if agent_id is not None and cancelled.failed(2):
                raise NotFound(f"agent {agent_id} not found") from cancelled
            if first_message is not None and (cancelled.failed(message_at) or cancelled.failed(message_at + 1)):
                raise IdCollision from cancelled  # the message id is taken (the new session is not: index 0 held)
            cancelled.unmapped()

    def get_sessions(self, ws: str, sids: list[int]) -> list[Session]:
        """BatchGetItem (100 per request, consistent), unprocessed keys retried; input order kept."""
        found: dict[int, Session] = {}
        wanted = list(dict.fromkeys(sids))
        for i in range(0, len(wanted), BATCH_GET_LIMIT):
            chunk = wanted[i:i + BATCH_GET_LIMIT]
            request = {self.table_name: {"ConsistentRead": True, "Keys": [
                session_key(ws, sid) for sid in chunk]}}
            for item in self._batch_get(request):
                session = session_from_item(item)
                found[session.id] = session
        return [found[sid] for sid in wanted if sid in found]

    def _conditional_update(self, ws: str, sid: int, *, update: str, condition: str, values: dict[str, Any],
                            names: dict[str, str], now: float, owner_condition: str | None,
                            what: str = "session") -> Session:
        kwargs: dict[str, Any] = dict(
            TableName=self.table_name, Key=session_key(ws, sid),
            UpdateExpression=update, ConditionExpression=condition, ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            resp = self._call("update_item", **kwargs)
        except Exception as exc:
            if is_condition_refused(exc):
                raise self._refusal(refused_item(exc), now, owner_condition, what) from exc
            raise
        return session_from_item(resp["Attributes"])

    def update_session(self, ws: str, sid: int, *, owner_condition: str | None, now: float,
                       changes: dict[str, Any], expected_container: int | None = None,
                       agent_check: int | None = None) -> Session:
        values: dict[str, Any] = {":now": to_av(int(now))}
        names: dict[str, str] = {}
        condition = self._visible_condition(owner_condition, values, names)
        if expected_container is not None:
            condition += " AND cid = :cid"
            values[":cid"] = to_av(expected_container)
        sets, removes = [], []
        for i, (field, value) in enumerate(changes.items()):
            names[f"#f{i}"] = field
            if value is None:
                removes.append(f"#f{i}")
            else:
                sets.append(f"#f{i} = :v{i}")
                values[f":v{i}"] = to_av(value)
        update = ("SET " + ", ".join(sets) if sets else "") + (" REMOVE " + ", ".join(removes) if removes else "")
        if agent_check is None:
            return self._conditional_update(ws, sid, update=update, condition=condition, values=values,
                                            names=names, now=now, owner_condition=owner_condition)
        return self._update_with_agent_check(ws, sid, update, condition, values, names, now, owner_condition,
                                             agent_check)

    def _update_with_agent_check(self, ws: str, sid: int, update: str, condition: str, values: dict[str, Any],
                                 names: dict[str, str], now: float, owner_condition: str | None,
                                 agent_id: int) -> Session:
        key = session_key(ws, sid)
        try:
            self._call("transact_write_items", TransactItems=[
                {"Update": {"TableName": self.table_name, "Key": key, "UpdateExpression": update,
                            "ConditionExpression": condition, "ExpressionAttributeValues": values,
                            "ExpressionAttributeNames": names, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                self._agent_exists(ws, agent_id),
            ])
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise self._refusal(cancelled.item(0), now, owner_condition, "session") from cancelled
            if cancelled.failed(1):
                raise NotFound(f"agent {agent_id} not found") from cancelled
            cancelled.unmapped()
        session = self.get_session(ws, sid)
        if session is None:
            raise NotFound("session not found")
        return session

    def close_session(self, ws: str, sid: int, *, owner_condition: str | None, now: float,
                      closed_at: str, purge_at: int) -> Session:
        values: dict[str, Any] = {":now": to_av(int(now)), ":closed": to_av(closed_at), ":purge": to_av(purge_at)}
        names: dict[str, str] = {}
        condition = self._visible_condition(owner_condition, values, names)
        try:
            # An active session: retention counts from now.
            return self._conditional_update(
                ws, sid, update="SET closed_at = :closed, updated_at = :closed, purge_at = :purge",
                condition=condition + " AND attribute_not_exists(closed_at) AND exp > :now",
                values=values, names=names, now=now, owner_condition=owner_condition)
        except SessionClosed:
            session = self.get_session(ws, sid)  # closing twice is not an error
            if session is not None:
                return session
            raise NotFound("session not found") from None
        except SessionExpired:
            # Expired already: it stopped being active at expiry, so its retention clock stands.
            del values[":purge"]
            return self._conditional_update(
                ws, sid, update="SET closed_at = :closed, updated_at = :closed",
                condition=condition + " AND attribute_not_exists(closed_at)",
                values=values, names=names, now=now, owner_condition=owner_condition)

    def delete_session(self, ws: str, sid: int, *, owner_condition: str | None, now: float) -> Session:
        values: dict[str, Any] = {":now": to_av(int(now))}
        names: dict[str, str] = {}
        kwargs: dict[str, Any] = dict(
            TableName=self.table_name, Key=session_key(ws, sid),
            ConditionExpression=self._visible_condition(owner_condition, values, names),
            ExpressionAttributeValues=values, ReturnValues="ALL_OLD")
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            resp = self._call("delete_item", **kwargs)
        except Exception as exc:
            if is_condition_refused(exc):
                raise NotFound("session not found") from exc
            raise
        return session_from_item(resp["Attributes"])

    def delete_sessions(self, ws: str, sids: list[int]) -> None:
        self.batch_write([{"DeleteRequest": {"Key": session_key(ws, sid)}} for sid in sids])

    def _agent_exists(self, ws: str, aid: int) -> dict[str, Any]:
        """The transaction item that checks the agent a session names exists."""
        return {"ConditionCheck": {"TableName": self.table_name, "ConditionExpression": "attribute_exists(pk)",
                                   "Key": agent_key(ws, aid)}}
