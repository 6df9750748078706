"""Static bounds on a document before it is validated or run: depth, cost (list fields multiply their
children by the page size they may return), mutation fields per operation, fragment cycles. Linear in the
document: each fragment is costed once per page size, so alias and fragment bombs are refused without being
expanded.

A page size is the `limit` the document asks for, a literal or a variable. Without the request's variables
(`variables=None`, when a document is first cached) a variable `limit` counts at its maximum; a document that is
within bounds only with its variables' values is marked `Bounds.cost_needs_variables` and checked again per
request (`check_document(..., variables=...)`).

Introspection (`__schema`, `__type`; refused anyway unless the deployment enables it) has bounds of its own: the
standard introspection query that GraphiQL, Apollo and codegen tools send is 15 levels deep (its `ofType` chains),
which the operation depth limit would refuse, while what makes introspection costly is lists inside lists
(`types { fields { type { fields ...`), which is bounded at the standard query's three."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
)

from chatkeep import limits

# (most items, page size when the document gives no `limit`) of the list fields that take a `limit` argument.
LIMITED = {"messages": (limits.MAX_MESSAGES_PAGE, limits.MAX_MESSAGES_PAGE),  # messages(limit: Int = 200)
           "getTodoChatSessions": (limits.MAX_PAGE, 20)}  # getTodoChatSessions(limit: Int = 20): its `sessions`
# List fields and the most items they return, and what sets their page size: `getTodoChatSessions`'s limit pages
# its `sessions`; `getSearchTodoChatSessions` takes no limit.
LIST_FIELDS = {"sessions": limits.MAX_PAGE, "messages": limits.MAX_MESSAGES_PAGE,
               "getSearchTodoChatSessions": limits.MAX_PAGE}
PAGED_CHILD = {"getTodoChatSessions": "sessions"}
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
INTROSPECTION_LISTS = frozenset({"types", "fields", "inputFields", "interfaces", "possibleTypes", "enumValues",
                                 "args", "directives"})
MAX_INTROSPECTION_DEPTH = 20  # the standard query's TypeRef follows ofType 7 to 9 levels down
MAX_INTROSPECTION_LISTS = 3  # types > fields > args
UNKNOWN = None  # the page size of a variable `limit` before the request's variables are known


class CostTooHigh(GraphQLError):
    """The cost bound: the only one whose answer may depend on the request's variables."""


@dataclass(slots=True)
class Bounds:
    errors: list[GraphQLError] = field(default_factory=list)
    # Over the cost bound with its variable `limit`s at their maximum: check it again with the variables.
    cost_needs_variables: bool = False


class _Analyser:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any] | None,
                 defaults: Mapping[str, ValueNode | None]) -> None:
        self.fragments = fragments
        self.variables = variables
        self.defaults = defaults
        self.memo: dict[tuple[str, int | None], tuple[int, int, int]] = {}
        self.visiting: set[str] = set()
        self.variable_limit = False  # a `limit` given by a variable was counted

    def page_size(self, node: FieldNode, maximum: int, default: int) -> int:
        """The `limit` this field asks for, within [1, maximum]; its default when absent or null."""
        value: Any = default
        for arg in node.arguments or ():
            if arg.name.value != "limit":
                continue
            value = self._value(arg.value, maximum, default)
        if not isinstance(value, int) or isinstance(value, bool):
            return maximum  # a value of the wrong type: validation or the resolver refuses it
        return max(1, min(maximum, value))

    def _value(self, node: ValueNode, maximum: int, default: int) -> Any:
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, NullValueNode):
            return default
        if isinstance(node, VariableNode):
            self.variable_limit = True
            name = node.name.value
            if self.variables is None:
                return maximum
            if name in self.variables:
                value = self.variables[name]
                return default if value is None else value
            fallback = self.defaults.get(name)
            return default if fallback is None else self._value(fallback, maximum, default)
        return maximum

    def selection_set(self, node: SelectionSetNode | None, paged: int | None = None) -> tuple[int, int, int]:
        """(cost, depth, nesting of introspection lists) of a selection set; `paged`: the page size its
        `sessions` field was given by its parent (`getTodoChatSessions(limit:)`)."""
        if node is None:
            return 0, 0, 0
        cost, depth, lists = 0, 0, 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                child_paged = None
                if name in PAGED_CHILD:
                    child_paged = self.page_size(selection, *LIMITED[name])
                child_cost, child_depth, child_lists = self.selection_set(selection.selection_set, child_paged)
                multiplier = 1
                if name == "sessions" and paged is not None:
                    multiplier = paged
                elif name in LIMITED and name not in PAGED_CHILD:
                    multiplier = self.page_size(selection, *LIMITED[name])
                elif name in LIST_FIELDS:
                    multiplier = LIST_FIELDS[name]
                if name in INTROSPECTION_ROOTS:
                    _check_introspection(1 + child_depth, child_lists)
                    child_depth = 0  # bounded above, on its own terms
                cost += 1 + multiplier * child_cost
                depth = max(depth, 1 + child_depth)
                lists = max(lists, child_lists + (name in INTROSPECTION_LISTS))
            elif isinstance(selection, InlineFragmentNode):
                c, d, n = self.selection_set(selection.selection_set, paged)
                cost, depth, lists = cost + c, max(depth, d), max(lists, n)
            elif isinstance(selection, FragmentSpreadNode):
                c, d, n = self.fragment(selection.name.value, paged)
                cost, depth, lists = cost + c, max(depth, d), max(lists, n)
        return cost, depth, lists

    def fragment(self, name: str, paged: int | None) -> tuple[int, int, int]:
        key = (name, paged)
        if key in self.memo:
            return self.memo[key]
        if name in self.visiting:
            raise GraphQLError(f"Cannot spread fragment '{name}' within itself.")
        definition = self.fragments.get(name)
        if definition is None:
            return 0, 0, 0  # unknown fragment: standard validation reports it
        self.visiting.add(name)
        result = self.selection_set(definition.selection_set, paged)
        self.visiting.discard(name)
        self.memo[key] = result
        return result

    def top_level_fields(self, node: SelectionSetNode, seen: frozenset[str] = frozenset()) -> int:
        """The fields an operation runs at its root (through fragments), `__typename` aside."""
        count = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                count += selection.name.value != "__typename"
            elif isinstance(selection, InlineFragmentNode):
                count += self.top_level_fields(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                definition = self.fragments.get(selection.name.value)
                if definition is not None and definition.name.value not in seen:
                    count += self.top_level_fields(definition.selection_set, seen | {definition.name.value})
        return count


def _check_introspection(depth: int, lists: int) -> None:
    if depth > MAX_INTROSPECTION_DEPTH:
        raise GraphQLError(f"Introspection is {depth} levels deep; the limit is {MAX_INTROSPECTION_DEPTH}.")
    if lists > MAX_INTROSPECTION_LISTS:
        raise GraphQLError(f"Introspection nests {lists} lists (types, fields, args...); the limit is "
                           f"{MAX_INTROSPECTION_LISTS}.")


def bounds(document: DocumentNode, *, max_depth: int, max_cost: int,
           max_mutation_fields: int = limits.MAX_MUTATION_FIELDS, variables: dict[str, Any] | None = None) -> Bounds:
    """The bounds a document breaks (`variables`: the request's; None: not known yet, see the module)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    result = Bounds()
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        defaults = {v.variable.name.value: v.default_value for v in definition.variable_definitions or ()}
        analyser = _Analyser(fragments, variables, defaults)
        try:
            cost, depth, _ = analyser.selection_set(definition.selection_set)
        except GraphQLError as error:
            return Bounds([error])
        name = definition.name.value if definition.name else "anonymous"
        if depth > max_depth:
            result.errors.append(GraphQLError(f"Operation '{name}' is {depth} levels deep; the limit is {max_depth}."))
        if definition.operation is OperationType.MUTATION:
            fields = analyser.top_level_fields(definition.selection_set)
            if fields > max_mutation_fields:
                result.errors.append(GraphQLError(
                    f"Operation '{name}' has {fields} mutation fields; the limit is {max_mutation_fields} per "
                    "request. Send the others in further requests."))
        if cost > max_cost:
            if variables is None and analyser.variable_limit:
                result.cost_needs_variables = True
            else:
                result.errors.append(CostTooHigh(
                    f"Operation '{name}' may cost {cost}; the limit is {max_cost}. Ask for fewer fields or "
                    "smaller pages (a smaller `limit`)."))
    return result


def check_document(document: DocumentNode, *, max_depth: int, max_cost: int,
                   max_mutation_fields: int = limits.MAX_MUTATION_FIELDS,
                   variables: dict[str, Any] | None = None) -> list[GraphQLError]:
    """The errors of `bounds` (a document whose cost needs its variables is not refused here)."""
    return bounds(document, max_depth=max_depth, max_cost=max_cost, max_mutation_fields=max_mutation_fields,
                  variables=variables).errors
