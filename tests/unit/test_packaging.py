"""Packaging: pyproject.toml is the one dependency list and the one package list.

- layers/common/requirements.txt (what `sam build` installs into the layer) is generated from it;
- everything the layer imports is a declared runtime dependency (the local runtime's and the tools' are not);
- the wheel holds every module and data file of chatkeep and chatkeep_local (package discovery, not a hand list)."""

from __future__ import annotations

import ast
import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from scripts.layer_requirements import PYPROJECT, REQUIREMENTS, distribution_name, render

ROOT = PYPROJECT.parent
LAYER = ROOT / "layers" / "common" / "chatkeep"
LOCAL = ROOT / "local" / "chatkeep_local"
# Imported by the layer, installed and version-pinned by a declared dependency (part of its public API; urllib3:
# botocore's transport, whose errors botocore lets through, and which the Lambda runtime ships with boto3).
COMES_WITH = {"pydantic-core": "pydantic", "botocore": "boto3", "urllib3": "boto3"}


def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]


def _third_party_imports(*folders: Path) -> set[str]:
    """Top-level names of the modules imported anywhere under the folders, less the stdlib and our own."""
    names: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in {"chatkeep", "chatkeep_local"}}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    by_module = importlib.metadata.packages_distributions()
    missing = sorted(m for m in modules if m not in by_module)
    assert not missing, f"imported but not installed: {missing}"
    return {m: {distribution_name(d) for d in by_module[m]} for m in modules}


def test_given_pyproject_when_the_layer_requirements_are_rendered_then_the_committed_file_is_the_same() -> None:
    assert REQUIREMENTS.read_text(encoding="utf-8") == render(), "run `make requirements` and commit the result"


def test_given_the_layer_and_its_handlers_then_every_import_is_a_declared_runtime_dependency() -> None:
    declared = {distribution_name(d) for d in _project()["dependencies"]}
    modules = _third_party_imports(LAYER, ROOT / "functions")
    undeclared = {m: dists for m, dists in _distributions(modules).items()
                  if not dists & declared and not {COMES_WITH.get(d) for d in dists} & declared}
    assert not undeclared, f"the layer imports packages missing from [project].dependencies: {undeclared}"
    # (jwt is the layer's own since live updates: chatkeep.realtime.tokens verifies connection_init tokens)
    for extra in ("moto", "yaml", "pytest", "requests"):
        assert extra not in modules, f"the layer must not import {extra} (a local-runtime or dev dependency)"


def test_given_the_local_runtime_then_its_imports_are_runtime_or_local_dependencies() -> None:
    project = _project()
    declared = {distribution_name(d) for d in project["dependencies"] + project["optional-dependencies"]["local"]}
    modules = _third_party_imports(LOCAL)
    undeclared = {m: dists for m, dists in _distributions(modules).items()
                  if not dists & declared and not {COMES_WITH.get(d) for d in dists} & declared}
    assert not undeclared, f"chatkeep_local imports packages missing from dependencies + [local]: {undeclared}"


def test_given_a_wheel_built_from_pyproject_then_it_holds_every_file_of_both_packages(tmp_path: Path) -> None:
    # A copy of what the build reads, so the in-tree build leaves nothing behind in the work tree.
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy2(PYPROJECT, source / "pyproject.toml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(LAYER, source / "layers" / "common" / "chatkeep", ignore=ignore)
    shutil.copytree(LOCAL, source / "local" / "chatkeep_local", ignore=ignore)
    out = tmp_path / "wheel"
    # --no-build-isolation: setuptools from the venv (a dev dependency), so the build needs no network.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [wheel] = out.glob("chatkeep-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())

    # Every file of both packages: modules, the GraphQL schema, the local runtime's static GraphiQL.
    expected = {f"{package.name}/{p.relative_to(package).as_posix()}" for package in (LAYER, LOCAL)
                for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert any(name.startswith("chatkeep/repository/") for name in expected)  # the package once left out
    assert sorted(expected - in_wheel) == [], "modules missing from the wheel"
