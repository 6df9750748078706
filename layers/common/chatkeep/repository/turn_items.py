"""How a turn and an agent reply are stored (docs/architecture.md, "Agent turns"): flat attributes on the
session item (so one condition can say "no turn in progress") and on the reply's message item."""

from __future__ import annotations

from typing import Any

from chatkeep.models import Message, ReplyStatus, Turn, TurnStatus, Usage
from chatkeep.repository.codec import ABSENT

# Session item attributes of its current (or last) turn.
TURN_ID, TURN_STATUS, TURN_MESSAGE, TURN_REPLY = "turn_id", "turn_status", "turn_mid", "turn_reply"
TURN_ERROR, TURN_CANCEL, TURN_WORKER, TURN_LEASE = "turn_error", "turn_cancel", "turn_worker", "turn_lease"
USAGE_IN, USAGE_OUT = "usage_in", "usage_out"
# "No turn in progress": the condition of every write that starts one.
NO_TURN_IN_PROGRESS = f"(attribute_not_exists({TURN_STATUS}) OR NOT {TURN_STATUS} IN (:tq, :tr))"
IN_PROGRESS_VALUES = {":tq": {"S": TurnStatus.QUEUED.value}, ":tr": {"S": TurnStatus.RUNNING.value}}
# What a new turn clears of the last one (its reply, error, cancel flag, worker and lease).
ENDED_TURN_ATTRIBUTES = (TURN_REPLY, TURN_ERROR, TURN_CANCEL, TURN_WORKER, TURN_LEASE)


def _int(item: dict[str, Any], name: str) -> int | None:
    raw = item.get(name, ABSENT).get("N")
    return None if raw is None else int(raw)


def turn_from_item(item: dict[str, Any]) -> Turn | None:
    turn_id = _int(item, TURN_ID)
    if turn_id is None:
        return None
    return Turn(
        id=turn_id,
        status=TurnStatus(item[TURN_STATUS]["S"]),
        message_id=_int(item, TURN_MESSAGE) or 0,
        reply_id=_int(item, TURN_REPLY),
        error_code=item.get(TURN_ERROR, ABSENT).get("S"),
        cancel_requested=bool(item.get(TURN_CANCEL, ABSENT).get("BOOL")),
    )


def usage_from_item(item: dict[str, Any]) -> Usage:
    return Usage(input_tokens=_int(item, USAGE_IN) or 0, output_tokens=_int(item, USAGE_OUT) or 0)


def queued_turn_values(turn_id: int, message_id: int) -> dict[str, Any]:
    """The attributes that queue a turn on its session (an update's SET values, or a new session's item)."""
    return {TURN_ID: turn_id, TURN_STATUS: TurnStatus.QUEUED.value, TURN_MESSAGE: message_id}


# Reply attributes of a message item.
def add_reply_fields(message: Message, item: dict[str, Any]) -> Message:
    status = item.get("status", ABSENT).get("S")
    if status is None:
        return message
    message.status = ReplyStatus(status)
    message.turn_id = _int(item, "turn_id")
    message.model = item.get("model", ABSENT).get("S")
    message.stop_reason = item.get("stop_reason", ABSENT).get("S")
    if "usage_in" in item:
        message.usage = Usage(input_tokens=_int(item, "usage_in") or 0, output_tokens=_int(item, "usage_out") or 0)
    message.latency_ms = _int(item, "latency_ms")
    message.error_code = item.get("error_code", ABSENT).get("S")
    message.error_message = item.get("error_message", ABSENT).get("S")
    return message


def reply_values(message: Message) -> dict[str, Any]:
    """A reply's own attributes, None where unset (to_item drops those)."""
    usage = message.usage
    return {
        "status": message.status.value if message.status else None, "turn_id": message.turn_id,
        "model": message.model, "stop_reason": message.stop_reason,
        "usage_in": usage.input_tokens if usage else None, "usage_out": usage.output_tokens if usage else None,
        "latency_ms": message.latency_ms, "error_code": message.error_code, "error_message": message.error_message,
    }
