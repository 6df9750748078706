"""Where the peers section needs moto 5.2 to act as DynamoDB does: the item size limit (a figure of the section)
and a Query's cost (the section's run time). Both patches hold inside `like_dynamodb()` only.

Item size. moto checks the size on every attribute it sets, counting what the item holds already plus the new
value. When an update replaces an attribute, the old value is still there and is counted too: an item that is one
big attribute (LangChain's history) is refused at about half the limit. moto's limit is also 405,000 bytes of its
own measure (no list or map overhead) where DynamoDB's is 400 KB. Here the check counts the item as it will be,
by the rules of DynamoDB's item-size page (as bench/cost.py sizes items): names + values, binary by raw bytes,
3 bytes per list or map plus 1 per element, numbers ~ digits/2 + 1, against 400 x 1,024 bytes. A refusal raises
moto's own ValidationException, so the client sees what DynamoDB answers.

Query. moto sorts every item of the table on every Query, then keeps the partition's; with LangGraph's dozen
items per turn, 16 writers x 50 turns into one table took minutes. Here a Query of the table is handed its
partition's items alone, as DynamoDB reads them, and a Query of an index the table's items unsorted (moto sorts
the matches). Scans keep moto's sorted order (their paging depends on it)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ITEM_LIMIT = 400 * 1024


def value_size(value: Any) -> int:
    """A moto DynamoType's size by DynamoDB's rules (its name not included)."""
    kind, inner = value.type, value.value
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return math.ceil(len(inner.lstrip("-").replace(".", "").strip("0") or "0") / 2) + 1
    if kind == "B":
        return len(inner) if isinstance(inner, bytes) else len(inner) * 3 // 4 - inner[-2:].count("=")
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + value_size(v) for k, v in inner.items())
    return sum(len(str(v).encode()) for v in inner)  # sets: the sum of their members


@contextmanager
def like_dynamodb() -> Iterator[None]:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.table import Table

    def setitem(attrs: dict[str, Any], key: str, value: Any) -> None:
        others = sum(len(k.encode()) + value_size(v) for k, v in attrs.items() if k != key)
        typed = value if isinstance(value, DynamoType) else DynamoType(value)
        if others + len(key.encode()) + value_size(typed) > ITEM_LIMIT:
            raise ItemSizeTooLarge  # an update turns it into "Item size to update has exceeded ..."
        dict.__setitem__(attrs, key, value)

    querying = threading.local()
    original_query, original_all_items = Table.query, Table.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")  # Table.query's 8th parameter
        querying.active, querying.partition = True, None if index_name else hash_key
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            querying.active = False

    def all_items(self: Any) -> list[Any]:
        if not getattr(querying, "active", False):
            return original_all_items(self)
        if querying.partition is not None:
            found = self.items.get(querying.partition)
            return [] if found is None else list(found.values()) if self.range_key_attr else [found]
        if self.range_key_attr:
            return [item for partition in self.items.values() for item in partition.values()]
        return list(self.items.values())

    original_setitem = LimitedSizeDict.__setitem__
    LimitedSizeDict.__setitem__ = setitem  # type: ignore[method-assign, assignment]
    Table.query, Table.all_items = query, all_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        LimitedSizeDict.__setitem__ = original_setitem  # type: ignore[method-assign]
        Table.query, Table.all_items = original_query, original_all_items  # type: ignore[method-assign]
