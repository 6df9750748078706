"""A `subscribe` message's operation: checked as POST /graphql checks a document (size, depth and cost bounds, the
schema's validation, cached by sha256), then authorized by running its subscription field once with a context that
asks the service whether the caller may read that session or todo.

Queries and mutations are not served over the socket: they are answered with an `error` naming POST /graphql
(Apollo's split link sends only subscriptions to GraphQLWsLink). TodoChatSession.messages is refused in a
subscription: events carry the session, not its history."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, FieldNode, GraphQLError, OperationType, TypeInfo, TypeInfoVisitor, Visitor, visit
from graphql.utilities import get_operation_ast

from chatkeep.auth import Principal
from chatkeep.graphql import server
from chatkeep.graphql.errors import format_error
from chatkeep.realtime.events import SESSION, topic
from chatkeep.settings import get_settings

_documents = server.DocumentCache()


@dataclass(slots=True)
class Prepared:
    topic: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


class SubscribeContext:
    """The context of the authorizing run: the subscription field names its topic here."""

    def __init__(self, principal: Principal, service: Any) -> None:
        self.principal, self.service = principal, service
        self.topic: str | None = None

    def subscription_root(self, kind: str, entity_id: int) -> None:
        if kind == SESSION:
            self.service.get_session_only(self.principal, entity_id)  # NotFound: another owner, workspace, or none
        else:
            self.service.check_todo(self.principal, entity_id)
        self.topic = topic(kind, self.principal.workspace_id, entity_id)


def document(query: str) -> DocumentNode:
    """The checked document of a query text (cached); raises server's refusal with coded GraphQL errors."""
    digest = hashlib.sha256(query.encode()).hexdigest()
    return _documents.document(digest, query, get_settings().enable_introspection)


def _error(message: str, code: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code}}


class _SessionHistory(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.found = False

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        parent = self.type_info.get_parent_type()
        if parent is not None and parent.name == "TodoChatSession" and node.name.value == "messages":
            self.found = True


def prepare(principal: Principal, payload: dict[str, Any], service: Any) -> Prepared:
    """The topic the subscription follows, or the GraphQL errors to answer it with (never both)."""
    from graphql import execute_sync

    try:
        doc = document(payload["query"])
        _documents.check_cost(hashlib.sha256(payload["query"].encode()).hexdigest(), doc, payload.get("variables"))
    except server.Refused as refused:
        return Prepared(errors=[format_error(e) for e in refused.errors])
    operation_name = payload.get("operationName")
    operation = get_operation_ast(doc, operation_name)
    if operation is None:
        return Prepared(errors=[_error("the document has no such operation (operationName)", "BAD_REQUEST")])
    if operation.operation is not OperationType.SUBSCRIPTION:
        return Prepared(errors=[_error(
            f"this socket serves subscriptions only: send {operation.operation.value}s to POST /graphql",
            "OPERATION_NOT_SUPPORTED")])
    type_info = TypeInfo(server.schema())
    history = _SessionHistory(type_info)
    visit(doc, TypeInfoVisitor(type_info, history))
    if history.found:
        return Prepared(errors=[_error("TodoChatSession.messages is not delivered in events: query "
                                       "getOneTodoChatSession for the history", "BAD_USER_INPUT")])
    context = SubscribeContext(principal, service)
    result = execute_sync(server.schema(), doc, context_value=context, variable_values=payload.get("variables"),
                          operation_name=operation_name)
    if context.topic is not None:
        return Prepared(topic=context.topic)
    errors: list[GraphQLError] = list(result.errors or [])
    return Prepared(errors=[format_error(e) for e in errors] or [_error("not subscribed", "BAD_REQUEST")])


def reset() -> None:
    """Forget the checked documents (they were bounded and validated under the settings of their time)."""
    global _documents
    _documents = server.DocumentCache()


__all__ = ["Prepared", "SubscribeContext", "document", "prepare", "reset"]
