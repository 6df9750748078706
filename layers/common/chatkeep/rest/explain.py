"""Pydantic's validation errors in plain words: one message per field, naming the field, the rule and the limit.

pydantic says what its validators saw ("String should match pattern '[^\\s\\x1c-\\x1f]'", one line per member of
a union, tags such as `function-after[...]` in the location). A client needs the field, what is allowed and the
limit. The translation is by error type, with the limits read from the error's context and from the constraints
declared on the field (both bounds of a range, the fields a body allows), and the meaning of each pattern from
chatkeep.rest.schemas.PATTERN_MEANINGS. Locations are resolved against the request model, so union members' tags
are dropped and a location's union members collapse to one message."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel

from chatkeep.rest.schemas import NOT_OUR_CURSOR, PATTERN_MEANINGS

_TYPES = {
    "string_type": "must be a string", "str_type": "must be a string",
    "int_type": "must be an integer", "int_parsing": "must be an integer", "int_from_float": "must be a whole number",
    "float_type": "must be a number", "float_parsing": "must be a number", "finite_number": "must be a finite number",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "dict_type": "must be a JSON object", "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object", "list_type": "must be a JSON array",
    "date_type": "must be a day as YYYY-MM-DD", "date_parsing": "must be a day as YYYY-MM-DD",
    "date_from_datetime_parsing": "must be a day as YYYY-MM-DD",
    "date_from_datetime_inexact": "must be a day as YYYY-MM-DD", "none_required": "must be null",
}


class Field:
    """What the request model declares at one location: its type and its constraints (ge, le, lengths)."""

    def __init__(self, annotation: Any, constraints: list[Any]) -> None:
        self.annotation, self.constraints = annotation, constraints

    def bound(self, kind: type, name: str) -> Any:
        return next((getattr(c, name) for c in self.constraints if isinstance(c, kind)), None)


def _unwrap(annotation: Any, constraints: list[Any]) -> tuple[Any, list[Any]]:
    """Through Annotated and `X | None`, gathering the constraints on the way."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation, *extra = get_args(annotation)
            for item in extra:
                grouped = isinstance(item, annotated_types.GroupedMetadata)
                constraints.extend(list(item) if grouped else getattr(item, "metadata", None) or [item])
        elif get_origin(annotation) in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation, constraints
            annotation = members[0]
        else:
            return annotation, constraints


def _resolve(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], Field | None, Field | None]:
    """The location as a client names it (union tags dropped), the field there and the field that holds it."""
    names: list[str] = []
    here: Field | None = Field(model, [])
    parent: Field | None = None
    for part in loc:
        if here is None:
            names.append(str(part))
            continue
        annotation = here.annotation
        if part == "[key]":  # pydantic's marker: the error is of the dict key just named, not of its value
            names.append(part)
            here = None
            continue
        if get_origin(annotation) in (Union, types.UnionType):  # a union member's tag: not part of the location
            continue
        parent = here
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next((f for n, f in annotation.model_fields.items()
                          if part in (n, f.alias, f.validation_alias)), None)
            if part != "body" or names:  # body fields are named bare; path., query., header. stay
                names.append(str(part))
            here = Field(*_unwrap(field.annotation, list(field.metadata))) if field else None
        elif get_origin(annotation) is dict:
            names.append(str(part))
            here = Field(*_unwrap(get_args(annotation)[1], []))
        elif get_origin(annotation) is list:
            names.append(str(part))
            here = Field(*_unwrap(get_args(annotation)[0], []))
        else:
            names.append(str(part))
            here = None
    return names, here, parent


def _range(field: Field | None, ctx: dict[str, Any], what: str = "") -> str:
    low = field.bound(annotated_types.Ge, "ge") if field else None
    high = field.bound(annotated_types.Le, "le") if field else None
    low = ctx.get("ge", low) if low is None else low
    high = ctx.get("le", high) if high is None else high
    if low is not None and high is not None:
        return f"must be {what}between {low} and {high}"
    if low is not None:
        return f"must be {what}at least {low}"
    if high is not None:
        return f"must be {what}at most {high}"
    if "gt" in ctx:
        return f"must be {what}greater than {ctx['gt']}"
    return f"must be {what}less than {ctx.get('lt')}"


def _plural(count: Any, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _message(error: Mapping[str, Any], field: Field | None, parent: Field | None) -> str:
    kind, ctx, value = error.get("type", ""), error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        model = field.annotation if field else None
        if isinstance(model, type) and issubclass(model, BaseModel):
            required = [name for name, f in model.model_fields.items() if f.is_required()]
            return f"a JSON object is required (required fields: {', '.join(required)})"
        return "is required"
    if kind == "extra_forbidden":
        allowed = list(parent.annotation.model_fields) if parent and isinstance(parent.annotation, type) \
            and issubclass(parent.annotation, BaseModel) else []
        return f"unknown field (allowed: {', '.join(allowed)})" if allowed else "unknown field"
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"must be at least {_plural(ctx.get('min_length'), 'character')} (got {len(value or '')})"
    if kind == "string_too_long":
        return f"must be at most {_plural(ctx.get('max_length'), 'character')} (got {len(value or '')})"
    if kind in ("too_long", "too_short"):
        unit = "key" if isinstance(value, dict) else "item"
        limit = ctx.get("max_length") if kind == "too_long" else ctx.get("min_length")
        side = "at most" if kind == "too_long" else "at least"
        got = len(value) if isinstance(value, dict | list) else ctx.get("actual_length")
        return f"must have {side} {_plural(limit, unit)} (got {got})"
    if kind == "string_pattern_mismatch":
        if str(error.get("loc", ())[-1:]) == "('cursor',)":  # whatever its form, a cursor is opaque to clients
            return NOT_OUR_CURSOR
        return PATTERN_MEANINGS.get(str(ctx.get("pattern")), "is not in the expected form")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{_range(field, ctx)} (got {value})"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected')}"
    if kind in ("value_error", "assertion_error"):
        said = str(ctx.get("error") or "is not valid")
        return said if any(c.isdigit() for c in said) else said + _limits_of(field)  # a limit it did not state
    return _TYPES.get(kind, "is not valid") + _limits_of(field)


def _limits_of(field: Field | None) -> str:
    """A wrong type's message also states the field's limits, so the next try can be right."""
    if field is None:
        return ""
    if field.bound(annotated_types.Ge, "ge") is not None or field.bound(annotated_types.Le, "le") is not None:
        return f" ({_range(field, {})[len('must be '):]})"
    longest = field.bound(annotated_types.MaxLen, "max_length")
    unit = "key" if get_origin(field.annotation) is dict else "character"
    return "" if longest is None else f" (at most {_plural(longest, unit)})"


def explain(model: type[BaseModel], errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`{"type", "loc", "where", "msg"}` per location (type and loc: pydantic's, of the location's first error),
    in the order pydantic reported them. Of a union's members' errors at one location, a constraint a value of the
    right type broke says more than "must be a <type>", so it wins."""
    found: dict[str, dict[str, Any]] = {}
    for error in errors:
        names, field, parent = _resolve(model, tuple(error.get("loc") or ()))
        if names[-1:] == ["[key]"]:  # a dict key broke a rule: said of the dict, naming the key
            del names[-2:]
            message = f"key {str(error.get('input'))[:40]!r} {_message(error, field, parent)}"
        elif error.get("type") == "extra_forbidden":  # said of the object, naming the field
            message = f"unknown field {names.pop()!r}{_message(error, field, parent)[len('unknown field'):]}"
        else:
            message = _message(error, field, parent)
        where = ".".join(names) or "body"
        if where not in found:
            found[where] = {"type": error.get("type"), "loc": tuple(error.get("loc") or ()), "where": where,
                            "msg": message}
        elif found[where]["type"] in _TYPES and error.get("type") not in _TYPES:
            found[where]["msg"] = message
    return list(found.values())
