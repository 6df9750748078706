"""The agent-turn worker's access to the chat table (docs/architecture.md, "Agent turns").

Every write a worker makes is conditional on the session still carrying its turn and its worker id, in the
same transaction as the write itself: a turn never writes into a deleted session, a cancel or close is noticed
at the next periodic write (no extra reads per token), and a worker that was taken over cannot write again.

- `begin`: queued -> running, or take over a running turn whose lease ran out (its worker died);
- `open_reply`: the first tokens: the reply message (status streaming) and its id claim, plus the session's
  activity, as a post would;
- `persist`: the reply's content so far (at most about once a second);
- `check`: one consistent read of the session, for a watchdog when the model is silent;
- `finish`: the reply's final state, the turn's outcome and the usage sums (session, workspace-day-model, the
  latter on one of the workspace's USAGE_SHARDS keys, by session).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chatkeep import clock
from chatkeep.models import Message, Session, TurnStatus, Usage
from chatkeep.repository import keys
from chatkeep.repository.base import IdCollision
from chatkeep.repository.codec import from_item, to_av
from chatkeep.repository.errors import TransactionCancelled, is_condition_refused, refused_item
from chatkeep.repository.items import item_type, message_from_item, session_from_item, session_key
from chatkeep.repository.messages import MessageAccess
from chatkeep.repository.turn_items import (
    TURN_CANCEL,
    TURN_ID,
    TURN_LEASE,
    TURN_REPLY,
    TURN_STATUS,
    TURN_WORKER,
    USAGE_IN,
    USAGE_OUT,
    reply_values,
)

HISTORY_PAGE = 50


class StopReason(StrEnum):
    """Why a worker must stop writing its turn."""

    CANCELLED = "cancelled"
    CLOSED = "session_closed"
    EXPIRED = "session_expired"
    DELETED = "session_deleted"
    SUPERSEDED = "superseded"  # another worker took the turn over (this one was presumed dead)
    FINISHED = "finished"  # the turn already ended (a redelivered queue message)


class TurnStopped(Exception):
    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class TurnBusy(Exception):
    """Another worker holds the turn and its lease has not run out: let the queue deliver it again later."""


@dataclass(slots=True)
class TurnClaim:
    """What a worker holds while it runs a turn."""

    workspace_id: str
    session_id: int
    turn_id: int
    message_id: int
    worker: str
    session: Session
    reply: Message | None = None  # once the first tokens are written (or inherited from a dead worker)
    cancel_requested: bool = False
    written: list[str] = field(default_factory=list)  # content lengths persisted, for tests and bench


def stop_reason(item: dict[str, Any] | None, claim: TurnClaim, now: float) -> StopReason | None:
    """Why the session item says this worker must stop (None: it may go on)."""
    if not item:
        return StopReason.DELETED
    data = from_item(item)
    if data.get(TURN_ID) != claim.turn_id or data.get(TURN_STATUS) != TurnStatus.RUNNING.value:
        return StopReason.FINISHED
    if data.get(TURN_WORKER) != claim.worker:
        return StopReason.SUPERSEDED
    if data.get(TURN_CANCEL):
        return StopReason.CANCELLED
    if data.get("closed_at"):
        return StopReason.CLOSED
    if data.get("exp", 0) <= now or data.get("purge_at", 0) <= now:
        return StopReason.EXPIRED
    return None


class TurnStore(MessageAccess):
    """The worker's access to the chat table: `TurnStore(settings=None, client=None)`."""

    # ------------------------------------------------------------ begin

    def begin(self, ws: str, sid: int, turn_id: int, *, worker: str, now: float, lease_seconds: int) -> TurnClaim:
        """Take the turn: raises TurnStopped(FINISHED/DELETED) when there is nothing left to do, TurnBusy when
        another live worker has it."""
        values = {
            ":tid": to_av(turn_id), ":w": to_av(worker), ":lease": to_av(int(now) + lease_seconds),
            ":now": to_av(int(now)), ":queued": to_av(TurnStatus.QUEUED.value),
            ":running": to_av(TurnStatus.RUNNING.value),
        }
        try:
            resp = self._call(
                "update_item", TableName=self.table_name, Key=session_key(ws, sid),
                UpdateExpression=f"SET {TURN_STATUS} = :running, {TURN_WORKER} = :w, {TURN_LEASE} = :lease",
                ConditionExpression=(f"attribute_exists(pk) AND {TURN_ID} = :tid AND ({TURN_STATUS} = :queued OR "
                                     f"({TURN_STATUS} = :running AND {TURN_LEASE} < :now))"),
                ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except Exception as exc:
            if not is_condition_refused(exc):
                raise
            old = refused_item(exc)
            data = from_item(old) if old else {}
            if data.get(TURN_ID) == turn_id and data.get(TURN_STATUS) == TurnStatus.RUNNING.value:
                raise TurnBusy(f"turn {turn_id} is held by {data.get(TURN_WORKER)}") from exc
            raise TurnStopped(StopReason.DELETED if not old else StopReason.FINISHED) from exc
        item = resp["Attributes"]
        session = session_from_item(item)
        turn = session.turn
        assert turn is not None  # the condition named it
        claim = TurnClaim(workspace_id=ws, session_id=sid, turn_id=turn_id, message_id=turn.message_id,
                          worker=worker, session=session, cancel_requested=turn.cancel_requested)
        if turn.reply_id is not None:  # a dead worker's reply: this worker goes on with the same message
            claim.reply = self._message(ws, sid, turn.reply_id)
        return claim

    def _message(self, ws: str, sid: int, mid: int) -> Message | None:
        position = self.message_position(ws, mid)
        if position is None or position[0] != sid:
            return None
        resp = self._call("get_item", TableName=self.table_name, ConsistentRead=True,
                               Key={"pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": position[1]}})
        item = resp.get("Item")
        return message_from_item(item) if item else None

    # ------------------------------------------------------------ reading what the model needs

    def history_newest_first(self, ws: str, sid: int, *, before_sk: str) -> Iterator[Message]:
        """The session's messages up to and including `before_sk`, newest first, a page at a time (the caller
        stops reading once its window is full)."""
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name, "ConsistentRead": True, "ScanIndexForward": False,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi", "Limit": HISTORY_PAGE,
                "ExpressionAttributeValues": {":pk": {"S": keys.session_pk(ws, sid)},
                                              ":lo": {"S": keys.MESSAGE_SK_PREFIX}, ":hi": {"S": before_sk}},
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = self._call("query", **kwargs)
            for item in resp.get("Items", []):
                if item_type(item) == "message":
                    yield message_from_item(item)
            start = resp.get("LastEvaluatedKey")
            if not start:
                return

    def turn_message_sk(self, ws: str, sid: int, mid: int) -> str | None:
        position = self.message_position(ws, mid)
        return position[1] if position and position[0] == sid else None

    def tokens_today(self, ws: str, day: str) -> int:
        """The workspace's tokens of the day: one Query per usage key (keys.usage_pks, in parallel)."""
        def tokens(pk: str) -> int:
            resp = self._call(
                "query", TableName=self.table_name, KeyConditionExpression="pk = :pk AND begins_with(sk, :day)",
                ExpressionAttributeValues={":pk": {"S": pk}, ":day": {"S": keys.day_prefix(day)}})
            return sum(int(i.get("input_tokens", {}).get("N", 0)) + int(i.get("output_tokens", {}).get("N", 0))
                       for i in resp.get("Items", []))

        return sum(self.in_parallel(tokens, keys.usage_pks(ws)))

    # ------------------------------------------------------------ writes while running

    def _worker_check(self, claim: TurnClaim, now: float, *, allow_ended_session: bool) -> dict[str, Any]:
        """The condition that this worker still holds the turn (and, unless ending it, that it may go on)."""
        values = {":tid": to_av(claim.turn_id), ":w": to_av(claim.worker), ":now": to_av(int(now)),
                  ":running": to_av(TurnStatus.RUNNING.value)}
        condition = (f"attribute_exists(pk) AND {TURN_ID} = :tid AND {TURN_STATUS} = :running "
                     f"AND {TURN_WORKER} = :w")
        if not allow_ended_session:
            condition += (f" AND attribute_not_exists({TURN_CANCEL}) AND attribute_not_exists(closed_at)"
                          " AND exp > :now")
        return {"condition": condition, "values": values}

    def _transact(self, claim: TurnClaim, now: float, items: list[dict[str, Any]],
                  id_claims: tuple[int, ...] = ()) -> None:
        """TransactWriteItems after the session's check (item 0): TurnStopped when the turn must stop, IdCollision
        when one of `id_claims` (the items claiming a new message's id) was refused."""
        try:
            self._call("transact_write_items", TransactItems=items)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                reason = stop_reason(cancelled.item(0), claim, now) or StopReason.FINISHED
                raise TurnStopped(reason) from cancelled
            if not cancelled.conflict and any(cancelled.failed(i) for i in id_claims):
                raise IdCollision from cancelled
            cancelled.unmapped()

    def _session_check(self, claim: TurnClaim, now: float) -> dict[str, Any]:
        check = self._worker_check(claim, now, allow_ended_session=False)
        return {"ConditionCheck": {
            "TableName": self.table_name, "Key": session_key(claim.workspace_id, claim.session_id),
            "ConditionExpression": check["condition"], "ExpressionAttributeValues": check["values"],
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}

    def open_reply(self, claim: TurnClaim, reply: Message, *, now: float, retention: int) -> None:
        """The reply appears: its message (status streaming) and id claim, the session's activity moved as a
        post moves it, all or nothing. Raises IdCollision (draw another id) or TurnStopped."""
        ws, sid = claim.workspace_id, claim.session_id
        check = self._worker_check(claim, now, allow_ended_session=False)
        values = dict(check["values"])
        stamp = reply.created_at
        values.update({":rid": to_av(reply.id), ":at": to_av(stamp),
                       ":gsk": to_av(keys.activity_sk(stamp, sid)), ":nowr": to_av(int(now) + retention)})
        session_update = {"Update": {
            "TableName": self.table_name, "Key": session_key(ws, sid),
            "UpdateExpression": (f"SET {TURN_REPLY} = :rid, last_activity_at = :at, updated_at = :at, gsi1sk = :gsk, "
                                 "exp = idle_timeout + :now, purge_at = idle_timeout + :nowr"),
            "ConditionExpression": check["condition"], "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
        puts = self._message_puts(reply, extra=reply_values(reply))
        self._transact(claim, now, [session_update, *puts], id_claims=(1, 2))
        claim.reply = reply

    def persist(self, claim: TurnClaim, content: str, *, now: float) -> None:
        """The reply's content so far; refused (TurnStopped) once the turn must stop."""
        reply = claim.reply
        assert reply is not None
        self._transact(claim, now, [self._session_check(claim, now), {"Update": {
            "TableName": self.table_name,
            "Key": {"pk": {"S": keys.session_pk(claim.workspace_id, claim.session_id)},
                    "sk": {"S": keys.message_sk(reply.created_at, reply.id)}},
            "UpdateExpression": "SET content = :c",
            "ExpressionAttributeValues": {":c": to_av(content)}}}])
        reply.content = content
        claim.written.append(str(len(content)))

    def check(self, claim: TurnClaim, *, now: float) -> StopReason | None:
        """One consistent read of the session: must this worker stop? (For a watchdog while the model is silent.)"""
        resp = self._call("get_item", TableName=self.table_name, ConsistentRead=True,
                               Key=session_key(claim.workspace_id, claim.session_id))
        return stop_reason(resp.get("Item"), claim, now)

    # ------------------------------------------------------------ the end

    def finish(self, claim: TurnClaim, *, status: TurnStatus, reply: Message | None, usage: Usage | None,
               model: str | None, now: float) -> None:
        """The turn's outcome in one transaction: the session (turn ended, usage summed), the reply's final state
        (or, when the turn ends before any token, a new reply carrying the failure), and the workspace's usage
        for the day and model. Allowed on a closed or expired session (the turn ends there); refused, writing
        nothing, when the session is gone or another worker holds the turn."""
        ws, sid = claim.workspace_id, claim.session_id
        check = self._worker_check(claim, now, allow_ended_session=True)
        values = dict(check["values"])
        values[":st"] = to_av(status.value)
        sets = [f"{TURN_STATUS} = :st"]
        adds: list[str] = []
        if reply is not None and reply.error_code:
            values[":err"] = to_av(reply.error_code)
            sets.append("turn_error = :err")
        if reply is not None:
            values[":rid"] = to_av(reply.id)
            sets.append(f"{TURN_REPLY} = :rid")
        if usage is not None and (usage.input_tokens or usage.output_tokens):
            values[":in"], values[":out"] = to_av(usage.input_tokens), to_av(usage.output_tokens)
            adds = [f"{USAGE_IN} :in", f"{USAGE_OUT} :out"]
        expression = "SET " + ", ".join(sets) + f" REMOVE {TURN_WORKER}, {TURN_LEASE}, {TURN_CANCEL}"
        if adds:
            expression += " ADD " + ", ".join(adds)
        items: list[dict[str, Any]] = [{"Update": {
            "TableName": self.table_name, "Key": session_key(ws, sid), "UpdateExpression": expression,
            "ConditionExpression": check["condition"], "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}]
        if reply is not None:
            if claim.reply is None:  # never opened: the reply is born finished
                items.extend(self._message_puts(reply, extra=reply_values(reply)))
            else:
                fields = {"content": reply.content, **reply_values(reply)}
                present = {k: v for k, v in fields.items() if v is not None}
                items.append({"Update": {
                    "TableName": self.table_name,
                    "Key": {"pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": keys.message_sk(reply.created_at,
                                                                                             reply.id)}},
                    "UpdateExpression": "SET " + ", ".join(f"#{k} = :{k}" for k in present),
                    "ExpressionAttributeNames": {f"#{k}": k for k in present},
                    "ExpressionAttributeValues": {f":{k}": to_av(v) for k, v in present.items()}}})
        if usage is not None and model and (usage.input_tokens or usage.output_tokens):
            day = clock.iso(now)[:10]
            items.append({"Update": {
                "TableName": self.table_name,
                # one of the workspace's usage keys, by session: a busy workspace's turns spread over them
                "Key": {"pk": {"S": keys.usage_pk(ws, keys.usage_shard(sid))}, "sk": {"S": keys.usage_sk(day, model)}},
                "UpdateExpression": ("SET #type = :type, ws = :ws, #day = :day, model = :model "
                                     "ADD input_tokens :in, output_tokens :out, turns :one"),
                "ExpressionAttributeNames": {"#type": "type", "#day": "day"},
                "ExpressionAttributeValues": {":type": to_av("usage"), ":ws": to_av(ws), ":day": to_av(day),
                                              ":model": to_av(model), ":in": to_av(usage.input_tokens),
                                              ":out": to_av(usage.output_tokens), ":one": to_av(1)}}})
        self._transact(claim, now, items)
