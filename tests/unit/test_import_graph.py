"""The layer's import graph (every import statement of layers/common/chatkeep, at module level and inside
functions, read with ast): no cycle between chatkeep's modules; nothing the layer must not ship or lean on
(the local runtime, moto, the tests); the API packages never reach past the service into data access; boto3 and
botocore only in data access and its client factory."""

from __future__ import annotations

import ast
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layers" / "common"
FORBIDDEN = ("chatkeep_local", "moto", "tests")
API_PACKAGES = ("chatkeep.rest", "chatkeep.graphql")
AWS_SDK = ("boto3", "botocore")
# Data access: DynamoDB through the repository, Amazon Bedrock through the agents' model client (the one place
# that turns Bedrock's errors into a turn's failure codes), and the client factory.
AWS_SDK_USERS = ("chatkeep.aws", "chatkeep.repository", "chatkeep.agents.model")


def module_name(path: Path, root: Path = LAYER) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(tree: ast.Module, module: str, is_package: bool) -> list[str]:
    """Every module name an import statement anywhere in the module names (relative imports resolved; for
    `from a import b`, both `a` and `a.b`: b may be a module)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def import_graph(root: Path = LAYER) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """({module: chatkeep modules it imports}, {module: every name it imports}). Importing a.b.c runs a and a.b
    first: those edges are in the graph too."""
    trees = {module_name(p, root): (ast.parse(p.read_text(encoding="utf-8")), p.name == "__init__.py")
             for p in sorted((root / "chatkeep").rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    names: dict[str, set[str]] = {}
    for module, (tree, is_package) in trees.items():
        imported = set(imported_names(tree, module, is_package))
        names[module] = imported
        targets: set[str] = set()
        for name in imported:
            parts = name.split(".")
            targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        graph[module] = {t for t in targets if t in trees and t != module}
    return graph, names


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_given_the_layer_then_no_import_cycle_between_its_modules() -> None:
    graph, _ = import_graph()
    found = cycles(graph)
    details = [" <-> ".join(c) + ": " + "; ".join(f"{m} imports {sorted(graph[m] & set(c))}" for m in c)
               for c in found]
    assert found == [], "\n".join(details)


def test_given_the_layer_then_it_imports_neither_the_local_runtime_nor_moto_nor_the_tests() -> None:
    _, names = import_graph()
    wrong = sorted(f"{module} imports {name}" for module, imported in names.items() for name in imported
                   if _under(name, FORBIDDEN))
    assert wrong == []


def test_given_the_api_packages_then_they_reach_data_access_only_through_the_service() -> None:
    _, names = import_graph()
    wrong = sorted(f"{module} imports {name}" for module, imported in names.items() if _under(module, API_PACKAGES)
                   for name in imported if _under(name, ("chatkeep.repository",)))
    assert wrong == []


def test_given_the_layer_then_only_data_access_and_the_client_factory_import_the_aws_sdk() -> None:
    _, names = import_graph()
    wrong = sorted(f"{module} imports {name}" for module, imported in names.items()
                   if not _under(module, AWS_SDK_USERS) for name in imported if _under(name, AWS_SDK))
    assert wrong == []


def test_given_a_cycle_hidden_in_a_function_then_the_graph_finds_it(tmp_path: Path) -> None:
    package = tmp_path / "chatkeep"
    (package / "rest").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "rest" / "__init__.py").write_text("")
    (package / "rest" / "common.py").write_text("def created():\n    from chatkeep.rest.idempotency import run\n")
    (package / "rest" / "idempotency.py").write_text("from .errors import Reused\n")
    (package / "rest" / "errors.py").write_text("from chatkeep.rest import common\n")
    graph, _ = import_graph(tmp_path)
    assert cycles(graph) == [["chatkeep.rest.common", "chatkeep.rest.errors", "chatkeep.rest.idempotency"]]
