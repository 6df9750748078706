"""Static bounds on a document before it is validated or run: depth, cost (list fields multiply their
children by the page size they may return), fragment cycles. Linear in the document: each fragment is
costed once, so alias and fragment bombs are refused without being expanded."""

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


class _Analyser:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, tuple[int, int]] = {}
        self.visiting: set[str] = set()

    def selection_set(self, node: SelectionSetNode | None) -> tuple[int, int]:
        """(cost, depth) of a selection set."""
        if node is None:
            return 0, 0
        cost, depth = 0, 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                child_cost, child_depth = self.selection_set(selection.selection_set)
                name = selection.name.value
                multiplier = 1
                if name in LIST_FIELDS:
                    multiplier = LIST_FIELDS[name]
                    for arg in selection.arguments or ():
                        if arg.name.value == "limit" and isinstance(arg.value, IntValueNode):
                            multiplier = max(1, min(multiplier, int(arg.value.value)))
                cost += 1 + multiplier * child_cost
                depth = max(depth, 1 + child_depth)
            elif isinstance(selection, InlineFragmentNode):
                c, d = self.selection_set(selection.selection_set)
                cost, depth = cost + c, max(depth, d)
            elif isinstance(selection, FragmentSpreadNode):
                c, d = self.fragment(selection.name.value)
                cost, depth = cost + c, max(depth, d)
        return cost, depth

    def fragment(self, name: str) -> tuple[int, int]:
        if name in self.memo:
            return self.memo[name]
        if name in self.visiting:
            raise GraphQLError(f"Cannot spread fragment '{name}' within itself.")
        definition = self.fragments.get(name)
        if definition is None:
            return 0, 0  # unknown fragment: standard validation reports it
        self.visiting.add(name)
        result = self.selection_set(definition.selection_set)
        self.visiting.discard(name)
        self.memo[name] = result
        return result


def check_document(document: DocumentNode, *, max_depth: int, max_cost: int) -> list[GraphQLError]:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    analyser = _Analyser(fragments)
    errors: list[GraphQLError] = []
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        try:
            cost, depth = analyser.selection_set(definition.selection_set)
        except GraphQLError as error:
            return [error]
        name = definition.name.value if definition.name else "anonymous"
        if depth > max_depth:
            errors.append(GraphQLError(f"Operation '{name}' is {depth} levels deep; the limit is {max_depth}."))
        if cost > max_cost:
            errors.append(GraphQLError(
                f"Operation '{name}' may cost {cost}; the limit is {max_cost}. Ask for fewer fields or smaller pages."))
    return errors
