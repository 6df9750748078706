"""Messages: ChatRepository's message part, over DynamoDB (a post is one transaction with its session's
lifecycle check; a session's history is read from its partition)."""

from __future__ import annotations

from typing import Any

from chatkeep.models import Message, Session
from chatkeep.repository import keys
from chatkeep.repository.base import IdCollision
from chatkeep.repository.codec import from_item, to_av
from chatkeep.repository.errors import TransactionCancelled
from chatkeep.repository.items import item_type, message_from_item, session_from_item, session_key
from chatkeep.repository.table import ChatTable
from chatkeep.repository.turn_items import (
    ENDED_TURN_ATTRIBUTES,
    IN_PROGRESS_VALUES,
    NO_TURN_IN_PROGRESS,
    queued_turn_values,
)


class MessageAccess(ChatTable):
    def get_session_view(self, ws: str, sid: int, *, message_limit: int, before_sk: str | None = None
                         ) -> tuple[Session | None, list[Message], bool]:
        """The session and its newest messages, oldest first: the newest-first page of list_messages (one
        Query that also returns the session item; two requests with a bound), in chronological order."""
        session, messages, has_more = self.list_messages(ws, sid, limit=message_limit, newest_first=True,
                                                         after_sk=None, before_sk=before_sk)
        messages.reverse()
        return session, messages, has_more

    def list_messages(self, ws: str, sid: int, *, limit: int, newest_first: bool,
                      after_sk: str | None, before_sk: str | None) -> tuple[Session | None, list[Message], bool]:
        """Newest-first without a bound: one Query that also returns the session item (it sorts last).
        Otherwise the session is read first (ownership, existence), then the bounded range."""
        pk = keys.session_pk(ws, sid)
        values: dict[str, Any] = {":pk": {"S": pk}}
        lo = after_sk if after_sk else keys.MESSAGE_SK_PREFIX
        hi = before_sk if before_sk else keys.SESSION_SK
        values[":lo"], values[":hi"] = {"S": lo}, {"S": hi}
        one_query = newest_first and not after_sk and not before_sk
        session: Session | None = None
        if not one_query:
            session = self.get_session(ws, sid)
            if session is None:
                return None, [], False
        resp = self._call(
            "query", TableName=self.table_name, ConsistentRead=True, ScanIndexForward=not newest_first,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi", ExpressionAttributeValues=values,
            # BETWEEN includes the bounds themselves: read one more per bound, or a full page after a
            # bound would look like the last one (has_more false while messages remain).
            Limit=limit + (2 if one_query else 1) + (1 if after_sk else 0) + (1 if before_sk else 0))
        items = resp.get("Items", [])
        if one_query:
            if not items or item_type(items[0]) != "session":
                return None, [], False
            session = session_from_item(items[0])
        # BETWEEN is inclusive: drop the bounds themselves.
        messages = [message_from_item(i) for i in items
                    if item_type(i) == "message" and i["sk"]["S"] not in (after_sk, before_sk)]
        has_more = len(messages) > limit
        return session, messages[:limit], has_more

    def message_position(self, ws: str, mid: int) -> tuple[int, str] | None:
        resp = self._call("get_item", TableName=self.table_name, ConsistentRead=True,
                          Key={"pk": {"S": keys.message_claim_pk(ws, mid)}, "sk": {"S": keys.CLAIM_SK}})
        item = resp.get("Item")
        if not item:
            return None
        data = from_item(item)
        return int(data["sid"]), data["msk"]

    def post_message(self, message: Message, *, owner_condition: str | None, now: float,
                     activity_at: str, retention: int, turn_id: int | None = None) -> None:
        """One transaction: the session accepts the message (race-free lifecycle check) and the message and
        its id claim are written. A refused post writes nothing. `retention`: the service's rule, seconds a
        session is kept after it expires (purge_at moves with exp). `turn_id`: the message starts the agent's
        turn, queued on the session in the same write, refused (TurnInProgress) while another is in progress."""
        ws, sid, mid = message.workspace_id, message.session_id, message.id
        values: dict[str, Any] = {
            ":now": to_av(int(now)), ":at": to_av(activity_at),
            ":gsk": to_av(keys.activity_sk(activity_at, sid)), ":nowr": to_av(int(now) + retention),
        }
        names: dict[str, str] = {}
        condition = (self._visible_condition(owner_condition, values, names)
                     + " AND attribute_not_exists(closed_at) AND exp > :now")
        msk = keys.message_sk(message.created_at, mid)
        # Expiry moves with activity, using the session's own idle timeout (no read needed).
        expression = ("SET last_activity_at = :at, updated_at = :at, gsi1sk = :gsk, "
                      "exp = idle_timeout + :now, purge_at = idle_timeout + :nowr")
        if turn_id is not None:
            condition += " AND " + NO_TURN_IN_PROGRESS
            values.update(IN_PROGRESS_VALUES)
            for i, (name, value) in enumerate(queued_turn_values(turn_id, mid).items()):
                expression += f", {name} = :turn{i}"
                values[f":turn{i}"] = to_av(value)
            expression += " REMOVE " + ", ".join(ENDED_TURN_ATTRIBUTES)
        update = {
            "TableName": self.table_name,
            "Key": session_key(ws, sid),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if names:
            update["ExpressionAttributeNames"] = names
        try:
            self._call("transact_write_items", TransactItems=[{"Update": update}, *self._message_puts(message)])
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise self._refusal(cancelled.item(0), now, owner_condition, "session") from cancelled
            if cancelled.failed(1) or cancelled.failed(2):  # the message or its id claim
                if self._already_written(keys.message_claim_pk(ws, mid), keys.CLAIM_SK, {"sid": sid, "msk": msk}):
                    return  # our own earlier attempt (its answer was lost; botocore sent it again)
                raise IdCollision from cancelled
            cancelled.unmapped()
