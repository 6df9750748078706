"""Agent turns: ChatRepository's turn part, over DynamoDB (docs/agents.md, "Control"): cancel, retry, usage.
The worker's own access (take, open, persist, check, finish) is chatkeep.repository.turn_store."""

from __future__ import annotations

from typing import Any

from chatkeep.models import Session, TurnStatus
from chatkeep.repository import keys
from chatkeep.repository.codec import from_item, to_av
from chatkeep.repository.errors import is_condition_refused, refused_item
from chatkeep.repository.items import session_from_item, session_key
from chatkeep.repository.table import ChatTable
from chatkeep.repository.turn_items import ENDED_TURN_ATTRIBUTES, TURN_CANCEL, TURN_ID, TURN_STATUS


class TurnAccess(ChatTable):
    """ChatRepository's turn part: cancel, retry and usage reads (each one conditional write or one Query)."""

    def _update(self, ws: str, sid: int, *, expression: str, condition: str, values: dict[str, Any],
                names: dict[str, str], now: float, owner_condition: str | None) -> tuple[Session | None,
                                                                                         dict[str, Any] | None]:
        """(the session after the update, None) or (None, the item as it was when the condition failed)."""
        visible = self._visible_condition(owner_condition, values, names)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name, "UpdateExpression": expression, "ReturnValues": "ALL_NEW",
            "Key": session_key(ws, sid),
            "ConditionExpression": f"{visible} AND {condition}", "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            resp = self._call("update_item", **kwargs)
        except Exception as exc:
            if not is_condition_refused(exc):
                raise
            return None, refused_item(exc)
        return session_from_item(resp["Attributes"]), None

    def cancel_turn(self, ws: str, sid: int, *, owner_condition: str | None, now: float) -> Session:
        """A queued turn ends at once (the worker will find nothing to do); a running one is marked, and its
        worker stops at its next write or watchdog read (within about a second)."""
        from chatkeep.errors import Conflict

        session, old = self._update(ws, sid, expression=f"SET {TURN_STATUS} = :cancelled",
                                    condition=f"{TURN_STATUS} = :queued",
                                    values={":now": to_av(int(now)), ":queued": to_av(TurnStatus.QUEUED.value),
                                            ":cancelled": to_av(TurnStatus.CANCELLED.value)},
                                    names={}, now=now, owner_condition=owner_condition)
        if session is not None:
            return session
        if old and from_item(old).get(TURN_STATUS) == TurnStatus.RUNNING.value:
            session, old = self._update(ws, sid, expression=f"SET {TURN_CANCEL} = :yes",
                                        condition=f"{TURN_STATUS} = :running",
                                        values={":now": to_av(int(now)), ":yes": {"BOOL": True},
                                                ":running": to_av(TurnStatus.RUNNING.value)}, names={}, now=now,
                                        owner_condition=owner_condition)
            if session is not None:
                return session
        self._raise_refusal(old, now, owner_condition)
        raise Conflict("no turn is in progress on this session: nothing to cancel")

    def retry_turn(self, ws: str, sid: int, turn_id: int, *, owner_condition: str | None, now: float) -> Session:
        """A new turn on the latest user message, after the last one failed or was cancelled."""
        from chatkeep.errors import Conflict

        values = {":now": to_av(int(now)), ":tid": to_av(turn_id), ":queued": to_av(TurnStatus.QUEUED.value),
                  ":failed": to_av(TurnStatus.FAILED.value), ":cancelled": to_av(TurnStatus.CANCELLED.value)}
        session, old = self._update(
            ws, sid,
            expression=f"SET {TURN_ID} = :tid, {TURN_STATUS} = :queued REMOVE " + ", ".join(ENDED_TURN_ATTRIBUTES),
            condition=(f"attribute_not_exists(closed_at) AND exp > :now AND {TURN_STATUS} IN (:failed, :cancelled)"),
            values=values, names={}, now=now, owner_condition=owner_condition)
        if session is not None:
            return session
        self._raise_refusal(old, now, owner_condition)
        status = from_item(old).get(TURN_STATUS) if old else None
        if status in (TurnStatus.QUEUED.value, TurnStatus.RUNNING.value):
            from chatkeep.errors import TurnInProgress

            raise TurnInProgress("the agent is still answering: wait for its reply or cancel the turn")
        if status is None:
            raise Conflict("this session has no agent turn to retry (its agent is not a managed agent, or no "
                           "message was posted yet)")
        raise Conflict("the last turn completed: post a new message instead of retrying")

    def _raise_refusal(self, old: dict[str, Any] | None, now: float, owner_condition: str | None) -> None:
        """Not found / closed / expired, as every session write says it; returns when it is none of those."""
        from chatkeep.errors import BadInput

        refusal = self._refusal(old, now, owner_condition, "session")
        if not isinstance(refusal, BadInput) and not _is_turn_conflict(refusal):
            raise refusal

    def workspace_usage(self, ws: str, first_day: str, last_day: str) -> list[dict[str, Any]]:
        """The workspace's token usage per day and model, days in [first_day, last_day] (YYYY-MM-DD): one Query
        per usage key of the workspace (keys.usage_pks, in parallel), summed per day and model."""

        def rows(pk: str) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            start: dict[str, Any] | None = None
            while True:
                kwargs: dict[str, Any] = {
                    "TableName": self.table_name, "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
                    "ExpressionAttributeValues": {":pk": {"S": pk}, ":lo": {"S": keys.day_prefix(first_day)},
                                                  ":hi": {"S": keys.day_prefix(last_day) + "\uffff"}}}
                if start:
                    kwargs["ExclusiveStartKey"] = start
                resp = self._call("query", **kwargs)
                out += [from_item(item) for item in resp.get("Items", [])]
                start = resp.get("LastEvaluatedKey")
                if not start:
                    return out

        sums: dict[tuple[str, str], dict[str, Any]] = {}
        for data in (d for part in self.in_parallel(rows, keys.usage_pks(ws)) for d in part):
            row = sums.setdefault((data["day"], data["model"]), {
                "day": data["day"], "model": data["model"], "turns": 0, "input_tokens": 0, "output_tokens": 0})
            for name in ("turns", "input_tokens", "output_tokens"):
                row[name] += int(data.get(name, 0))
        return [sums[k] for k in sorted(sums)]


def _is_turn_conflict(error: Exception) -> bool:
    from chatkeep.errors import TurnInProgress

    return isinstance(error, TurnInProgress)
