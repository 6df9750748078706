"""Make moto's DynamoDB behave like DynamoDB where chatkeep depends on it (moto 5.2).

moto's TransactWriteItems deep-copies every table it touches, once per item of the transaction, and
rolls a cancelled transaction back by putting that copy in the table's place. Three consequences
that DynamoDB does not have:
- cost grows with the table (a long `chatkeep dev` session or a load test slows to a crawl and
  grows to gigabytes);
- a concurrent writer's changes made meanwhile are erased by the rollback (no isolation);
- the table object (and its stream shard) is replaced, so stream readers holding the old one stop
  seeing records.

`install()` replaces it with what DynamoDB does: every condition (and the one-operation-per-item rule)
is checked first, nothing is written unless all pass, then the writes are applied. All backend calls
are serialised by one lock, so each request is atomic and isolated as it is in DynamoDB (where
single-item writes are atomic and transactions are serialisable). If applying a write still fails (an
update expression DynamoDB would have refused up front), the touched items and the stream are
restored to what they were, so a refused transaction leaves no trace.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_installed = False
_SERIALISED = (
    "create_table", "delete_table", "update_table", "describe_table", "put_item", "get_item", "update_item",
    "delete_item", "query", "scan", "batch_get_item", "batch_write_item", "transact_get_items",
    "transact_write_items", "update_time_to_live", "describe_time_to_live",
)


def install() -> None:
    """Patch moto's DynamoDB backend (idempotent; safe under mock_aws and the embedded server)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    for name in _SERIALISED:
        original = getattr(DynamoDBBackend, name, None)
        if original is not None:
            setattr(DynamoDBBackend, name, serialised(original))
    _installed = True


def serialised(method: Any, lock: Any = _LOCK) -> Any:
    """`method` run under `lock` (this backend's by default): moto's backends are not thread-safe."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return wrapper


def _key_of(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type == "Put":
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key
    return op["Key"]


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    # Phase 1: validate and check every condition; write nothing.
    seen: set[tuple[str, str]] = set()
    plan: list[tuple[str, dict[str, Any], Any, dict[str, Any]]] = []
    reasons: list[tuple[Any, Any, Any]] = []
    for entry in transact_items:
        if len(entry) != 1:
            raise TransactWriteSingleOpException()
        op_type, op = next(iter(entry.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise TransactWriteSingleOpException()
        table = self.get_table(op["TableName"])
        key = _key_of(table, op_type, op)
        marker = (table.name, str(sorted(key.items())))
        if marker in seen:
            raise MultipleTransactionsException()
        seen.add(marker)
        current = self.get_item(table.name, key)
        condition = op.get("ConditionExpression")
        if condition is not None:
            check = get_filter_expression(condition, op.get("ExpressionAttributeNames"),
                                          op.get("ExpressionAttributeValues"))
            if not check.expr(current):
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                reasons.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
                continue
        reasons.append((None, None, None))
        plan.append((op_type, op, table, key))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    # Phase 2: apply. Remember the touched items and the stream's length to undo a failure.
    undo = [(table, key, copy.deepcopy(self.get_item(table.name, key))) for op_type, op, table, key in plan
            if op_type != "ConditionCheck"]
    stream_lengths = {t.name: len(t.stream_shard.items) for t, _, _ in undo if t.stream_shard is not None}
    try:
        for op_type, op, table, key in plan:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(table.name, op["Item"], expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table.name, key, expression_attribute_names=names,
                                 expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table.name, key, update_expression=op["UpdateExpression"],
                                 expression_attribute_names=names, expression_attribute_values=values)
    except Exception:
        _restore(undo, stream_lengths)
        raise


def _restore(undo: list[tuple[Any, dict[str, Any], Any]], stream_lengths: dict[str, int]) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    for table, key, original in reversed(undo):
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        bucket = table.items[hash_value] if range_value is not None else table.items
        slot = range_value if range_value is not None else hash_value
        if original is None:
            bucket.pop(slot, None)
        else:
            bucket[slot] = original
    for table, _, _ in undo:
        if table.name in stream_lengths:
            del table.stream_shard.items[stream_lengths[table.name]:]
