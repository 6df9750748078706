"""POST /graphql: API Gateway payload 2.0 in, payload 2.0 out.

The schema is built once per cold start. Documents are parsed, bounded (depth/cost) and validated once
per distinct text and cached by their sha256, which is also the key of Apollo's automatic persisted
queries: a warm call with a known document only executes."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ariadne import graphql_sync, load_schema_from_path, make_executable_schema
from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, specified_rules, validate
from graphql.error import GraphQLSyntaxError

from chatkeep.auth import Principal, principal_from_event
from chatkeep.errors import ChatkeepError
from chatkeep.graphql import guards
from chatkeep.graphql.errors import error_body, format_error
from chatkeep.graphql.resolvers import bindables
from chatkeep.service import default_service
from chatkeep.settings import get_settings

logger = logging.getLogger("chatkeep.graphql")
SCHEMA_PATH = Path(__file__).with_name("schema.graphql")
MAX_BODY_BYTES = 64 * 1024
MAX_QUERY_TOKENS = 2000
DOCUMENT_CACHE_SIZE = 512
JSON_HEADERS = {"content-type": "application/json"}


@lru_cache(maxsize=1)
def schema() -> GraphQLSchema:
    return make_executable_schema(load_schema_from_path(str(SCHEMA_PATH)), *bindables, convert_names_case=True)


@dataclass(slots=True)
class Context:
    principal: Principal
    service: Any


class DocumentCache:
    """sha256(query text) -> validated document (LRU). Also the APQ store of this Lambda instance."""

    def __init__(self, size: int = DOCUMENT_CACHE_SIZE) -> None:
        self.size = size
        self.texts: OrderedDict[str, str] = OrderedDict()
        self.documents: dict[str, DocumentNode] = {}
        self.cost_per_request: set[str] = set()  # digests whose cost depends on the request's variables

    def get_text(self, digest: str) -> str | None:
        text = self.texts.get(digest)
        if text is not None:
            self.texts.move_to_end(digest)
        return text

    def document(self, digest: str, text: str, introspection: bool) -> DocumentNode:
        """Parse, bound and validate once; raise GraphQLError (with a code) when the document is refused."""
        cached = self.documents.get(digest)
        if cached is not None:
            self.texts.move_to_end(digest)
            return cached
        try:
            document = parse(text, max_tokens=MAX_QUERY_TOKENS)
        except GraphQLSyntaxError as error:
            raise _coded(error, "GRAPHQL_PARSE_FAILED") from None
        settings = get_settings()
        bounds = guards.bounds(document, max_depth=settings.max_query_depth, max_cost=settings.max_query_cost)
        problems = bounds.errors
        if not problems:
            problems = validate(schema(), document, [*specified_rules, *_introspection_rules(introspection)])
        if problems:
            raise _coded(problems[0], "GRAPHQL_VALIDATION_FAILED", more=problems[1:])
        self.texts[digest] = text
        self.documents[digest] = document
        if bounds.cost_needs_variables:
            self.cost_per_request.add(digest)
        while len(self.texts) > self.size:
            old, _ = self.texts.popitem(last=False)
            self.documents.pop(old, None)
            self.cost_per_request.discard(old)
        return document

    def check_cost(self, digest: str, document: DocumentNode, variables: dict[str, Any] | None) -> None:
        """A document within the cost bound only for some values of its variable `limit`s: check these ones."""
        if digest not in self.cost_per_request:
            return
        settings = get_settings()
        problems = guards.check_document(document, max_depth=settings.max_query_depth,
                                         max_cost=settings.max_query_cost, variables=variables or {})
        if problems:
            raise _coded(problems[0], "GRAPHQL_VALIDATION_FAILED", more=problems[1:])


class Refused(Exception):
    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors


def _coded(error: GraphQLError, code: str, more: list[GraphQLError] | None = None) -> Refused:
    errors = [error, *(more or [])]
    for e in errors:
        e.extensions = {**(e.extensions or {}), "code": code}
    return Refused(errors)


@lru_cache(maxsize=2)
def _introspection_rules(enabled: bool) -> list:
    if enabled:
        return []
    from ariadne.validation.introspection_disabled import IntrospectionDisabledRule

    return [IntrospectionDisabledRule]


_cache = DocumentCache()


def reset() -> None:
    """Forget the validated documents (they were bounded and validated under the settings of their time: depth,
    cost, introspection): tests and the local runtime call it, with the other modules' reset(), when they
    change the environment."""
    global _cache
    _cache = DocumentCache()


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": JSON_HEADERS, "body": json.dumps(body, separators=(",", ":"))}


def _refusal(status: int, message: str, code: str) -> dict[str, Any]:
    return _response(status, error_body(message, code))


def _read_body(event: dict[str, Any]) -> dict[str, Any] | dict[str, Any]:
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
            raise _HttpError(400, "request body is not valid UTF-8 text", "BAD_REQUEST") from None
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise _HttpError(413, f"request body is over {MAX_BODY_BYTES} bytes", "BAD_REQUEST")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _HttpError(400, "request body is not valid JSON", "BAD_REQUEST") from None
    except RecursionError:
        raise _HttpError(400, "request body is nested too deeply", "BAD_REQUEST") from None
    if ("\\u" in raw or not raw.isascii()) and _has_lone_surrogate(data):
        raise _HttpError(400, "request body is not valid Unicode: it escapes a lone UTF-16 surrogate "
                         "(\\ud800-\\udfff without its pair)", "BAD_REQUEST")
    if isinstance(data, list):
        raise _HttpError(400, "batched operations are not supported: send one operation per request",
                         "BAD_REQUEST")
    if not isinstance(data, dict):
        raise _HttpError(400, "request body must be a JSON object with a 'query'", "BAD_REQUEST")
    return data


def _has_lone_surrogate(data: Any) -> bool:
    """JSON may escape half of a surrogate pair (\\ud800): Python keeps it, UTF-8 (and DynamoDB) cannot."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (RecursionError, ValueError):
        return False  # too deep or not finite: refused later with its own message
    return False


class _HttpError(Exception):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _resolve_document(data: dict[str, Any], introspection: bool) -> tuple[str, DocumentNode]:
    """The document to run, honouring Apollo's automatic persisted queries (version 1)."""
    query = data.get("query")
    persisted = ((data.get("extensions") or {}) if isinstance(data.get("extensions"), dict) else {}).get(
        "persistedQuery")
    if query is not None and not isinstance(query, str):
        raise _HttpError(400, "'query' must be a string", "BAD_REQUEST")
    if isinstance(persisted, dict):
        if persisted.get("version") != 1:
            raise _HttpError(400, "unsupported persisted query version", "PERSISTED_QUERY_NOT_SUPPORTED")
        digest = str(persisted.get("sha256Hash") or "").lower()
        if query is None:
            text = _cache.get_text(digest)
            if text is None:
                raise _HttpError(200, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
            return digest, _cache.document(digest, text, introspection)
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise _HttpError(400, "provided sha does not match query", "BAD_REQUEST")
        return digest, _cache.document(digest, query, introspection)
    if not query:
        raise _HttpError(400, "request has no 'query'", "BAD_REQUEST")
    digest = hashlib.sha256(query.encode()).hexdigest()
    return digest, _cache.document(digest, query, introspection)


def handle(event: dict[str, Any], service: Any = None) -> dict[str, Any]:
    settings = get_settings()
    try:
        principal = principal_from_event(event, settings)
    except ChatkeepError as error:
        return _refusal(error.status, error.message, error.code)
    try:
        data = _read_body(event)
        variables = data.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise _HttpError(400, "'variables' must be an object", "BAD_REQUEST")
        operation_name = data.get("operationName")
        if operation_name is not None and not isinstance(operation_name, str):
            raise _HttpError(400, "'operationName' must be a string", "BAD_REQUEST")
        digest, document = _resolve_document(data, settings.enable_introspection)
        if _is_subscription(document, operation_name):
            raise _HttpError(400, "subscriptions are served over the WebSocket API (graphql-transport-ws, stack "
                             "output WebSocketUrl), not POST /graphql", "BAD_REQUEST")
        _cache.check_cost(digest, document, variables)
    except _HttpError as error:
        return _refusal(error.status, error.message, error.code)
    except Refused as refused:
        return _response(400, {"errors": [format_error(e) for e in refused.errors]})
    context = Context(principal=principal, service=service or default_service())
    # The document is already validated (cached): skip ariadne's own validation pass.
    ok, result = graphql_sync(
        schema(), {"query": "#", "variables": variables, "operationName": operation_name},
        context_value=context, query_document=document, query_validator=_no_validation,
        error_formatter=format_error, debug=settings.debug, introspection=True, logger=_QUIET_EXECUTION_LOG,
    )
    return _response(200, result)


class _DropErrors(logging.LoggerAdapter):
    """ariadne logs every field error at ERROR with its traceback and the source document, which holds the
    inline literals of the request (message text, metadata values, titles): never log those. format_error
    already logs the unexpected ones (masked, with the exception, without the document); domain errors
    (NOT_FOUND, BAD_USER_INPUT, ...) are answers, not incidents."""

    def error(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def exception(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_QUIET_EXECUTION_LOG = _DropErrors(logger, {})


def _is_subscription(document: DocumentNode, operation_name: str | None) -> bool:
    from graphql import OperationType
    from graphql.utilities import get_operation_ast

    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation is OperationType.SUBSCRIPTION


def _no_validation(*_args: Any, **_kwargs: Any) -> list[GraphQLError]:
    return []
