"""DynamoDB AttributeValue <-> Python, for the low-level client (no boto3.resource: it costs cold start).
Numbers come back as int when integral, else float; None is NULL; empty strings are allowed."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


def to_av(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float)):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, dict):
        return {"M": {str(k): to_av(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [to_av(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__}")


def from_av(av: dict[str, Any]) -> Any:
    (kind, raw), = av.items()
    if kind == "S":
        return raw
    if kind == "N":
        try:
            return int(raw)  # most numbers are integers (ids, counts, epochs): try that first
        except ValueError:
            return float(raw)
    if kind == "BOOL":
        return raw
    if kind == "NULL":
        return None
    if kind == "M":
        return from_item(raw)
    if kind == "L":
        return [from_av(v) for v in raw]
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {float(n) for n in raw}
    raise TypeError(f"unsupported attribute type {kind}")


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Python dict -> DynamoDB item, dropping None (absent attributes, not NULLs)."""
    # Strings and ints are most attributes of every item: written inline, without a call each (hot on every
    # write).
    item = {}
    for name, value in values.items():
        kind = type(value)
        if kind is str:
            item[name] = {"S": value}
        elif kind is int:
            item[name] = {"N": str(value)}
        elif value is not None:
            item[name] = to_av(value)
    return item


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    # Strings are most attributes of every item: read them inline, without a call each (hot on every read).
    out = {}
    for name, av in item.items():
        raw = av.get("S")
        out[name] = raw if raw is not None else from_av(av)
    return out


# Reading attributes of an item as DynamoDB returns it (the model decoders in repository/items.py read only
# the attributes a model has, without decoding the whole item first: half the CPU per item).
# `item.get(name, ABSENT).get("S")`: None when the attribute is absent (or NULL). Read-only: it is shared.
ABSENT: Mapping[str, Any] = MappingProxyType({})


def attr_value(item: dict[str, Any], name: str) -> Any:
    """Any attribute, decoded (maps and lists included); None when absent."""
    av = item.get(name)
    return None if av is None else from_av(av)
