"""Request validation, compiled once per route: the REST app's one validation middleware.

The routes declare their parameters as Powertools does (`Annotated[str, Path(...)]`, `Query`, `Header`, a
pydantic body model); Powertools reads those signatures for the OpenAPI document. Validating them per request
is done here instead of by Powertools' `enable_validation` middleware, which walks every declared parameter in
Python on each request (about half of a warm GET's CPU, bench/README.md section 3). Here each route's
parameters become one pydantic model (`path`, `query`, `header`, `body`), built on the route's first request,
and a request is one `validate_python` call.

What reaches the route and what fails are Powertools' own contract: the route is called with the validated
values by parameter name; a failure raises `RequestValidationError` with pydantic's errors located as
`("path" | "query" | "header", alias)` or `("body", field, ...)`, one per location, each with its plain message
(`msg`, chatkeep.rest.explain) and the location as a client names it (`where`); a body that is not JSON as
`json_invalid`. A body whose every field is optional may be left out (read as {}); JSON `null` is not left out.
One difference, on purpose: a JSON array body is a 422 (Powertools validated its first element); the other,
`+json` media types read as JSON, is the handler's content-type check (chatkeep.rest.app)."""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError, create_model

from chatkeep.limits import MAX_JSON_DEPTH, json_depth_over
from chatkeep.powertools_compat import current_route, route_arguments, set_route_arguments
from chatkeep.rest.explain import explain


class RequestPlan:
    """One route's request model and what to read from the event for it."""

    __slots__ = ("body_name", "body_optional", "header_names", "model", "sections")

    def __init__(self, route: Any) -> None:
        dependant = route.dependant
        if dependant.cookie_params:
            raise NotImplementedError(f"{route.method} {route.path}: cookie parameters are not read by chatkeep")
        if len(dependant.body_params) > 1 or any(getattr(f.field_info, "embed", False) for f in dependant.body_params):
            raise NotImplementedError(f"{route.method} {route.path}: one body model, not embedded, per route")
        name = "".join(part.title() for part in route.func.__name__.split("_"))
        params = {"path": dependant.path_params, "query": dependant.query_params, "header": dependant.header_params}
        fields: dict[str, Any] = {}
        self.sections: list[str] = []
        for location, declared in params.items():
            if declared:
                definitions: dict[str, Any] = {f.name: (f.field_info.annotation, _keyed_by_alias(f)) for f in declared}
                section = create_model(f"{name}{location.title()}", **definitions)
                fields[location] = (section, ...)
                self.sections.append(location)
        self.body_name: str | None = None
        self.body_optional = False
        if dependant.body_params:
            body = dependant.body_params[0]
            self.body_name = body.name
            fields["body"] = (body.field_info.annotation, body.field_info)
            # A body whose every field is optional may be left out: no body reads as {}.
            self.body_optional = all(not f.is_required() for f in body.field_info.annotation.model_fields.values())
        self.model: type[BaseModel] = create_model(f"{name}Request", **fields)
        # Powertools lower-cases header aliases, as API Gateway HTTP APIs deliver header names.
        self.header_names = [f.alias for f in dependant.header_params]

    def arguments(self, event: dict[str, Any], path_values: dict[str, str]) -> dict[str, Any]:
        """The route's keyword arguments, validated; RequestValidationError otherwise."""
        data: dict[str, Any] = {"path": path_values}
        if "query" in self.sections:
            data["query"] = event.get("queryStringParameters") or {}
        if self.header_names:
            headers = event.get("headers") or {}
            data["header"] = {name: headers[name] for name in self.header_names if name in headers}
        if self.body_name is not None:
            if event.get("body"):
                data["body"] = _json_body(event)  # JSON null too: it is not an object (422)
            elif self.body_optional:
                data["body"] = {}
        try:
            request = self.model.__pydantic_validator__.validate_python(data)
        except ValidationError as exc:
            raise RequestValidationError(explain(self.model, exc.errors(include_url=False))) from None
        values: dict[str, Any] = {}
        for section in self.sections:
            values.update(getattr(request, section).__dict__)
        if self.body_name is not None:
            values[self.body_name] = request.body
        return values


def _keyed_by_alias(field: Any) -> Any:
    """The parameter's FieldInfo, read from the input under the name Powertools reads it by (and reports in
    errors): for a header, its lower-case alias (`idempotency-key`), not the declared `Idempotency-Key`."""
    info = copy.copy(field.field_info)
    info.validation_alias = field.alias
    return info


def _json_body(event: dict[str, Any]) -> Any:
    text = event["body"]
    if event.get("isBase64Encoded"):
        try:
            text = base64.b64decode(text, validate=True).decode()  # not UTF-8 -> 400 (chatkeep.rest.app)
        except binascii.Error:
            raise _not_json(0, "the body is not valid base64", text) from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _not_json(exc.pos, exc.msg, exc.doc) from exc
    except RecursionError:  # nested deeper than the parser's stack allows
        raise _not_json(0, TOO_DEEP, text) from None
    if json_depth_over(body, MAX_JSON_DEPTH):  # before anything walks it recursively (validators, errors)
        raise _not_json(0, TOO_DEEP, text)
    return body


TOO_DEEP = f"nested more than {MAX_JSON_DEPTH} levels deep"


def _not_json(position: int, why: str, body: str) -> RequestValidationError:
    return RequestValidationError([{"type": "json_invalid", "loc": ("body", position), "msg": "JSON decode error",
                                    "input": {}, "ctx": {"error": why}}], body=body)


def validate_request(app: Any, next_middleware: Any) -> Any:
    """Powertools middleware (`app.use`): validate, then call the route with the values."""
    route = current_route(app)
    plan = getattr(route, "chatkeep_request_plan", None)
    if plan is None:
        code = route.func.__code__
        if not code.co_argcount + code.co_kwonlyargcount:  # /docs, /openapi.json, Powertools' per-request 404
            return next_middleware(app)
        plan = route.chatkeep_request_plan = RequestPlan(route)
    set_route_arguments(app, plan.arguments(app.current_event.raw_event, route_arguments(app)))
    return next_middleware(app)
