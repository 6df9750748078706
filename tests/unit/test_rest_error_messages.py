"""Every validation rule of every REST request, broken one at a time: the 4xx message names the field, says the
rule in plain words and states the limit, with nothing of pydantic in it (issue 19).

The rules are read from /openapi.json (the document the request models and parameters generate), so a field
or constraint added later is walked too: one violating value per constraint (type, length, pattern, range,
choices, unknown fields, required fields, number of keys, key length)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import claims_for, http_event

INTERNALS = ("Input should", "String should", "Value error", "Field required", "function-after", "constrained-",
             "[type=", "pydantic", "Extra inputs", "[key]", "Dictionary should", "Assertion failed")
MISSING = object()  # the violation is leaving the field out
# A valid value for each field a body requires (a new required field needs one here).
VALID = {"content": "x", "slug": "a", "name": "n"}


class Case:
    def __init__(self, path: list[Any], value: Any, rule: str, limits: list[Any]) -> None:
        self.path, self.value, self.rule, self.limits = path, value, rule, limits


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _members(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in schema.get("anyOf", [schema]) if m.get("type") != "null"]


def accepts(schema: dict[str, Any], value: Any) -> bool:
    """The subset of JSON Schema the request models use, enough to drop 'violations' another member allows."""
    if "anyOf" in schema:
        return any(accepts(m, value) for m in schema["anyOf"])
    kind = schema.get("type")
    checks = {"null": value is None, "boolean": isinstance(value, bool), "string": isinstance(value, str),
              "integer": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, int | float) and not isinstance(value, bool),
              "object": isinstance(value, dict), "array": isinstance(value, list)}
    if kind and not checks[kind]:
        return False
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, dict):
        names = schema.get("propertyNames", {})
        if len(value) > schema.get("maxProperties", math.inf) or any(
                not names.get("minLength", 0) <= len(key) <= names.get("maxLength", math.inf) for key in value):
            return False
    if isinstance(value, str) and schema.get("format") == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return False
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", math.inf):
            return False
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not schema.get("minimum", -math.inf) <= value <= schema.get("maximum", math.inf):
            return False
        if not schema.get("exclusiveMinimum", -math.inf) < value < schema.get("exclusiveMaximum", math.inf):
            return False
    return True


def _exact(limit: float) -> int:
    """The integer a JSON Schema bound names (1e+38 is 10**38, not the float's 99999999999999997748...)."""
    return int(Decimal(repr(limit)))


def _below(limit: float, integer: bool) -> float:
    return _exact(limit) - 1 if integer else (limit / 10 if limit > 0 else limit - max(1.0, abs(limit)))


def _above(limit: float, integer: bool) -> float:
    return _exact(limit) + 1 if integer else limit + max(1.0, abs(limit))


def violations(schema: dict[str, Any], document: dict[str, Any], strings_only: bool = False) -> Iterator[Case]:
    """One value breaking each constraint of `schema` that no other member of its union accepts."""
    schema = _resolve(schema, document)
    members = [_resolve(m, document) for m in _members(schema)]
    found: list[Case] = []
    for member in members:
        found.extend(_member_violations(member, document, strings_only))
    if not strings_only:
        wrong = next((v for v in ([], {}, "s", 1, 1.5, True) if not any(accepts(m, v) for m in members)), MISSING)
        if wrong is not MISSING:
            found.append(Case([], wrong, "type", []))
    for case in found:
        if case.path or not any(accepts(m, case.value) for m in members):
            yield case


def _member_violations(member: dict[str, Any], document: dict[str, Any], strings_only: bool) -> Iterator[Case]:
    # pydantic writes its own names ("ge", "max_length") when it cannot turn a constraint into JSON Schema.
    assert not {"ge", "le", "gt", "lt", "min_length", "max_length"} & set(member), member
    kind = member.get("type")
    integer = kind == "integer"
    if kind == "object" or "properties" in member:
        yield from _object_violations(member, document)
        return
    if "minLength" in member and member["minLength"] > 0:
        yield Case([], "x" * (member["minLength"] - 1), "minLength", [member["minLength"]])
    if "maxLength" in member:
        yield Case([], "x" * (member["maxLength"] + 1), "maxLength", [member["maxLength"]])
    if "pattern" in member:
        short = member.get("maxLength", 64)
        bad = next(v for v in ("!", " ", "X_1", "\u00e9" * 3, "a" * 70) if not re.search(member["pattern"], v)
                   and len(v) <= short)
        yield Case([], bad, "pattern", [member["pattern"]])
    for key, make in (("minimum", _below), ("exclusiveMinimum", lambda v, _: v),
                      ("maximum", _above), ("exclusiveMaximum", lambda v, _: v)):
        if key in member:
            yield Case([], make(member[key], integer), key, [member[key]])
    if "enum" in member:
        yield Case([], "zz-no-such-choice", "enum", list(member["enum"]))
    if member.get("format") == "date":
        yield Case([], "2026-13-01", "format", ["YYYY-MM-DD"])
    if integer and strings_only:
        yield Case([], "x", "type", [])


def _object_violations(member: dict[str, Any], document: dict[str, Any]) -> Iterator[Case]:
    properties = member.get("properties", {})
    for name, prop in properties.items():
        for case in violations(prop, document):
            yield Case([name, *case.path], case.value, case.rule, case.limits)
    for name in member.get("required", []):
        yield Case([name], MISSING, "required", [])
    if member.get("additionalProperties") is False:
        yield Case(["zz_unknown"], 1, "additionalProperties", ["zz_unknown", *properties])
    values = member.get("additionalProperties")
    if isinstance(values, dict):
        for case in violations(values, document):
            yield Case(["k", *case.path], case.value, case.rule, case.limits)
    if "maxProperties" in member:
        count = member["maxProperties"] + 1
        yield Case([], {f"k{i}": None for i in range(count)}, "maxProperties", [member["maxProperties"]])
    names = member.get("propertyNames", {})
    if names.get("minLength"):
        yield Case([], {"": None}, "propertyNames.minLength", [names["minLength"]])
    if "maxLength" in names:
        yield Case([], {"k" * (names["maxLength"] + 1): None}, "propertyNames.maxLength", [names["maxLength"]])


def _limit_forms(limit: Any) -> set[str]:
    """How a message may state a limit: 100 / 100.0 / 1e+38 (and its 38 digits) / 'user'."""
    if isinstance(limit, str):
        return {limit}
    forms = {str(limit), f"{limit:g}", repr(limit)}
    if float(limit).is_integer():
        forms.add(str(int(limit)))
    if limit and math.log10(abs(limit)).is_integer():
        forms.add(str(abs(int(math.log10(abs(limit))))))  # 1e38: "at most 38 digits"
    return forms


def _states(message: str, limit: Any, rule: str) -> bool:
    if rule.endswith("minLength") and limit == 1 and "empty" in message:  # "must not be empty" states it
        return True
    return any(form in message for form in _limit_forms(limit))


def requests(document: dict[str, Any]) -> Iterator[tuple[str, str, str, Case, dict[str, Any]]]:
    """(method, path, field, case, event pieces) for every rule of every operation."""
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            path_values = {p["name"]: p["schema"]["examples"][0] for p in params if p["in"] == "path"}
            body_ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            body_schema = _resolve(body_ref, document) if body_ref else None
            base = {name: VALID[name] for name in (body_schema or {}).get("required", [])}
            base_pieces = {"path": path_values, "query": {}, "headers": {}, "body": base if body_schema else None}
            for param in params:
                for case in violations(param["schema"], document, strings_only=True):
                    pieces = json.loads(json.dumps(base_pieces))
                    section = {"path": "path", "query": "query", "header": "headers"}[param["in"]]
                    pieces[section][param["name"]] = str(case.value)
                    yield method, template, param["name"], case, pieces
            if body_schema:
                for case in violations(body_schema, document):
                    pieces = json.loads(json.dumps(base_pieces))
                    target = pieces["body"]
                    *parents, last = case.path or [None]
                    for part in parents:
                        target = target.setdefault(part, {})
                    if last is None:
                        pieces["body"] = case.value
                    elif case.value is MISSING:
                        target.pop(last, None)
                    else:
                        target[last] = case.value
                    yield method, template, str(case.path[-1]) if case.path else "body", case, pieces


def test_given_every_rule_of_every_rest_request_when_broken_then_the_message_names_field_rule_and_limit(dynamodb):
    from chatkeep.rest.app import handler, openapi_json

    document = json.loads(openapi_json())
    problems, walked, rules = [], 0, set()
    for method, template, field, case, pieces in requests(document):
        path = template
        for name, value in pieces["path"].items():
            path = path.replace("{" + name + "}", value)
        raw = None if pieces["body"] is None else json.dumps(pieces["body"])
        event = http_event(method.upper(), path, claims=claims_for(scope="chatkeep/service"), raw_body=raw,
                           query=pieces["query"] or None, headers=pieces["headers"] or None)
        out = handler(event, None)
        walked += 1
        rules.add(case.rule)
        body = json.loads(out["body"])
        message = (body.get("error") or {}).get("message", "")
        where = f"{method.upper()} {template} {field} {case.rule} {str(case.value)[:40]!r} -> {out['statusCode']}"
        if out["statusCode"] not in (400, 422) or body["error"]["code"] not in ("validation_error", "bad_request"):
            problems.append(f"{where}: not refused as a validation error: {body}")
            continue
        if field not in message:
            problems.append(f"{where}: the field is not named: {message}")
        if any(marker in message for marker in INTERNALS):
            problems.append(f"{where}: pydantic internals: {message}")
        if case.rule == "required" and "required" not in message:
            problems.append(f"{where}: does not say the field is required: {message}")
        if case.rule == "pattern" and ("expected form" in message or case.limits[0] in message):
            problems.append(f"{where}: the pattern's meaning is not in PATTERN_MEANINGS: {message}")
        elif case.rule != "pattern":
            missing = [limit for limit in case.limits if not _states(message, limit, case.rule)]
            if missing:
                problems.append(f"{where}: the limit {missing} is not stated: {message}")
    assert not problems, "\n".join(problems)
    # The walk reached every kind of rule the models declare.
    assert walked > 100 and {"type", "minLength", "maxLength", "pattern", "minimum", "maximum", "enum", "required",
                             "additionalProperties", "maxProperties", "propertyNames.minLength",
                             "propertyNames.maxLength", "format"} <= rules, (walked, rules)


@pytest.mark.parametrize(("method", "path", "query", "body", "expected"), [
    ("GET", "/v1/channels/{ch}/sessions", {"cursor": "abc"}, None,
     (400, "query.cursor: not a cursor this API returned (pass next_cursor of the previous page)")),
    ("GET", "/v1/channels/CH_19MFZY1", None, None,
     (400, "path.channel_id: expected a channel id such as ch_c1s (lowercase)")),
    ("POST", "/v1/channels/{ch}/messages", None, {"content": "   "}, (422, "content: must contain non-blank text")),
    ("POST", "/v1/channels", None, {"metadata": {"k": "x" * 600}},
     (422, "metadata.k: the value is 600 characters; the limit is 512")),
    ("POST", "/v1/channels", None, {"colour": "red"},
     (422, "body: unknown field 'colour' (allowed: name, agent_id, metadata, owner)")),
    ("POST", "/v1/channels/{ch}/sessions", None, {"idle_timeout_seconds": 5},
     (422, "idle_timeout_seconds: must be between 60 and 2592000 (got 5)")),
    ("GET", "/v1/channels/{ch}/sessions", {"limit": "x"}, None,
     (422, "query.limit: must be an integer (between 1 and 100)")),
])
def test_given_the_cases_of_issue_19_then_each_message_says_what_to_do(dynamodb, method, path, query, body, expected):
    from chatkeep.rest.app import handler

    channel = json.loads(handler(http_event("POST", "/v1/channels", claims=claims_for(), raw_body="{}"), None)["body"])
    event = http_event(method, path.format(ch=channel["id"]), claims=claims_for(), query=query,
                       raw_body=None if body is None else json.dumps(body))
    out = handler(event, None)
    assert (out["statusCode"], json.loads(out["body"])["error"]["message"]) == expected


def test_given_a_cursor_of_the_right_form_that_names_no_session_then_it_is_refused_as_a_cursor_not_an_id():
    from chatkeep.errors import BadInput
    from chatkeep.repository.cursor import start_of

    with pytest.raises(BadInput, match="not a cursor this API returned"):
        start_of("20260319T120000123Z")


def test_given_a_body_whose_fields_are_all_optional_then_the_openapi_document_does_not_require_it():
    from chatkeep.rest.app import openapi_json

    document = json.loads(openapi_json())
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                schema = _resolve(operation["requestBody"]["content"]["application/json"]["schema"], document)
                assert operation["requestBody"]["required"] == bool(schema.get("required")), (method, template)
