"""Caches that tests and the local runtime must forget: one documented `reset()` per module, all of them called
by chatkeep_local.harness.reset_caches (the list there is the one place that names them)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from chatkeep_local.harness import CACHING_MODULES

LAYER = Path(__file__).resolve().parents[2] / "layers" / "common"
# Module-level caches that depend on nothing the environment sets, so nothing needs to forget them.
ENVIRONMENT_FREE = {
    "chatkeep.auth": "callers by claims (the settings it reads are part of the key)",
    "chatkeep.clock": "date strings by day; the offset is the clock seam, set on purpose (clock.set_offset)",
    "chatkeep.graphql.server": "the schema, from schema.graphql",  # its documents: reset()
    "chatkeep.ids": "encoded ids",
    "chatkeep.observability": "the cold-start flag: the first invocation of the process",
    "chatkeep.rest.app": "the OpenAPI document and /docs page, from the routes",
}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted((LAYER / "chatkeep").rglob("*.py")):
        parts = path.relative_to(LAYER).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def _caches(tree: ast.Module) -> bool:
    """Whether a module keeps state across calls: a cached function, or a function that rebinds a global."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            return True
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                if name in ("cache", "lru_cache"):
                    return True
    return False


def _reset(tree: ast.Module) -> ast.FunctionDef | None:
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "reset"), None)


def test_given_the_layer_then_the_modules_with_a_reset_are_exactly_those_reset_caches_calls() -> None:
    with_reset = sorted(name for name, tree in _modules().items() if _reset(tree) is not None)
    assert with_reset == sorted(CACHING_MODULES)


def test_given_a_module_that_caches_then_it_has_a_reset_or_is_known_to_depend_on_no_environment() -> None:
    unaccounted = [name for name, tree in _modules().items()
                   if _caches(tree) and name not in CACHING_MODULES and name not in ENVIRONMENT_FREE]
    assert unaccounted == []


def test_given_each_reset_then_it_is_documented_takes_no_argument_and_runs() -> None:
    modules = _modules()
    for name in CACHING_MODULES:
        reset = _reset(modules[name])
        assert reset is not None and ast.get_docstring(reset), name
        assert not reset.args.args, name
        importlib.import_module(name).reset()
