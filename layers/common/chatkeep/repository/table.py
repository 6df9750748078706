"""The chat table as every part of the DynamoDB repository reads and writes it: one call in domain terms
(chatkeep.repository.errors), batch reads and writes under the retry policy of chatkeep.repository.batch, and
what the session-centred parts share (a session read, its visibility condition, why a write on it was refused,
the Puts of a new message)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chatkeep.errors import (
    BadInput,
    ChatkeepError,
    NotFound,
    ServiceUnavailable,
    SessionClosed,
    SessionExpired,
    TurnInProgress,
)
from chatkeep.models import Message, Session
from chatkeep.repository.batch import MAX_ATTEMPTS, TableAccess, backoff_delay
from chatkeep.repository.codec import from_item, to_av
from chatkeep.repository.items import message_items, session_from_item, session_key

GSI1 = "gsi1"  # containers' sessions by activity, agents by slug


class ChatTable(TableAccess):
    settings_table = "chat_table_name"

    def _already_written(self, pk: str, sk: str, expected: dict[str, Any]) -> bool:
        """After a refused `attribute_not_exists` Put of a fresh random id: is the item there ours? botocore
        retries a write whose answer was lost (timeout, dropped connection); the retry then finds the item its
        first attempt wrote. Without this check it reads as an id collision and the caller writes it twice."""
        resp = self._call("get_item", TableName=self.table_name, ConsistentRead=True,
                          Key={"pk": {"S": pk}, "sk": {"S": sk}})
        item = resp.get("Item")
        if not item:
            return False
        data = from_item(item)
        return all(data.get(k) == v for k, v in expected.items())

    @staticmethod
    def _visible_condition(owner_condition: str | None, values: dict[str, Any], names: dict[str, str]) -> str:
        """The session exists, is not past retention, and (for a user) is the caller's."""
        cond = "attribute_exists(pk) AND purge_at > :now"
        if owner_condition is not None:
            cond += " AND #owner = :owner"
            values[":owner"] = to_av(owner_condition)
            names["#owner"] = "owner"
        return cond

    @staticmethod
    def _refusal(item: dict[str, Any] | None, now: float, owner_condition: str | None, what: str) -> ChatkeepError:
        """Why a conditional write on a session was refused, from the item DynamoDB returned."""
        if not item:
            return NotFound(f"{what} not found")
        data = from_item(item)
        if data.get("purge_at", 0) <= now or (owner_condition is not None and data.get("owner") != owner_condition):
            return NotFound(f"{what} not found")
        if data.get("closed_at"):
            return SessionClosed("this session is closed: start a new session")
        if data.get("exp", 0) <= now:
            return SessionExpired("this session expired after inactivity: start a new session")
        if data.get("turn_status") in ("queued", "running"):
            return TurnInProgress("the agent is still answering the previous message: wait for its reply, or "
                                  "cancel the turn (POST /v1/sessions/{id}/turn/cancel, cancelTodoChatTurn)")
        return BadInput(f"{what} cannot be changed that way")

    def get_session(self, ws: str, sid: int) -> Session | None:
        """One session, GetItem (consistent): the read in front of most single-session operations."""
        resp = self._call("get_item", TableName=self.table_name, ConsistentRead=True, Key=session_key(ws, sid))
        item = resp.get("Item")
        return session_from_item(item) if item else None

    def _batch_get(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for attempt in range(MAX_ATTEMPTS):  # the retry policy of batch_write, for reads
            if attempt:
                self._sleep(backoff_delay(attempt - 1))
            resp = self._call("batch_get_item", RequestItems=request)
            yield from resp.get("Responses", {}).get(self.table_name, [])
            request = resp.get("UnprocessedKeys") or {}
            if not request:
                return
        raise ServiceUnavailable("the data store is busy: retry shortly")

    def _message_puts(self, message: Message, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The transaction Puts of a new message and its id claim; both refuse to overwrite. `extra`: more
        attributes of the message item (an agent reply's)."""
        return [{"Put": {"TableName": self.table_name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
                for item in message_items(message, extra)]
