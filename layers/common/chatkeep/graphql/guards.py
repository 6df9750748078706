"""Static bounds on a document before it is validated or run: depth, cost (list fields multiply their
children by the page size they may return), fragment cycles. Linear in the document: each fragment is
costed once, so alias and fragment bombs are refused without being expanded.

Introspection (`__schema`, `__type`; refused anyway unless the deployment enables it) has bounds of its own: the
standard introspection query that GraphiQL, Apollo and codegen tools send is 15 levels deep (its `ofType` chains),
which the operation depth limit would refuse, while what makes introspection costly is lists inside lists
(`types { fields { type { fields ...`), which is bounded at the standard query's three."""

from __future__ import annotations

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from chatkeep import limits

# List fields and the most items they can return (their `limit` argument when it is a literal).
LIST_FIELDS = {"sessions": limits.MAX_PAGE, "messages": limits.MAX_MESSAGES_PAGE,
               "getSearchTodoChatSessions": limits.MAX_PAGE}
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
INTROSPECTION_LISTS = frozenset({"types", "fields", "inputFields", "interfaces", "possibleTypes", "enumValues",
                                 "args", "directives"})
MAX_INTROSPECTION_DEPTH = 20  # the standard query's TypeRef follows ofType 7 to 9 levels down
MAX_INTROSPECTION_LISTS = 3  # types > fields > args


class _Analyser:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, tuple[int, int, int]] = {}
        self.visiting: set[str] = set()

    def selection_set(self, node: SelectionSetNode | None) -> tuple[int, int, int]:
        """(cost, depth, nesting of introspection lists) of a selection set."""
        if node is None:
            return 0, 0, 0
        cost, depth, lists = 0, 0, 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                child_cost, child_depth, child_lists = self.selection_set(selection.selection_set)
                name = selection.name.value
                multiplier = 1
                if name in LIST_FIELDS:
                    multiplier = LIST_FIELDS[name]
                    for arg in selection.arguments or ():
                        if arg.name.value == "limit" and isinstance(arg.value, IntValueNode):
                            multiplier = max(1, min(multiplier, int(arg.value.value)))
                if name in INTROSPECTION_ROOTS:
                    _check_introspection(1 + child_depth, child_lists)
                    child_depth = 0  # bounded above, on its own terms
                cost += 1 + multiplier * child_cost
                depth = max(depth, 1 + child_depth)
                lists = max(lists, child_lists + (name in INTROSPECTION_LISTS))
            elif isinstance(selection, InlineFragmentNode):
                c, d, n = self.selection_set(selection.selection_set)
                cost, depth, lists = cost + c, max(depth, d), max(lists, n)
            elif isinstance(selection, FragmentSpreadNode):
                c, d, n = self.fragment(selection.name.value)
                cost, depth, lists = cost + c, max(depth, d), max(lists, n)
        return cost, depth, lists

    def fragment(self, name: str) -> tuple[int, int, int]:
        if name in self.memo:
            return self.memo[name]
        if name in self.visiting:
            raise GraphQLError(f"Cannot spread fragment '{name}' within itself.")
        definition = self.fragments.get(name)
        if definition is None:
            return 0, 0, 0  # unknown fragment: standard validation reports it
        self.visiting.add(name)
        result = self.selection_set(definition.selection_set)
        self.visiting.discard(name)
        self.memo[name] = result
        return result


def _check_introspection(depth: int, lists: int) -> None:
    if depth > MAX_INTROSPECTION_DEPTH:
        raise GraphQLError(f"Introspection is {depth} levels deep; the limit is {MAX_INTROSPECTION_DEPTH}.")
    if lists > MAX_INTROSPECTION_LISTS:
        raise GraphQLError(f"Introspection nests {lists} lists (types, fields, args...); the limit is "
                           f"{MAX_INTROSPECTION_LISTS}.")


def check_document(document: DocumentNode, *, max_depth: int, max_cost: int) -> list[GraphQLError]:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    analyser = _Analyser(fragments)
    errors: list[GraphQLError] = []
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        try:
            cost, depth, _ = analyser.selection_set(definition.selection_set)
        except GraphQLError as error:
            return [error]
        name = definition.name.value if definition.name else "anonymous"
        if depth > max_depth:
            errors.append(GraphQLError(f"Operation '{name}' is {depth} levels deep; the limit is {max_depth}."))
        if cost > max_cost:
            errors.append(GraphQLError(
                f"Operation '{name}' may cost {cost}; the limit is {max_cost}. Ask for fewer fields or smaller pages."))
    return errors
