"""docs/architecture.md's code map names every module of the layer, the local runtime and the handlers, and
nothing that is gone: a moved, split or new module fails here until the map says where it went."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARCHITECTURE = REPO / "docs" / "architecture.md"
# package root -> the folder its paths in the map are relative to
ROOTS = {"chatkeep": REPO / "layers" / "common", "chatkeep_local": REPO / "local", "functions": REPO}
MODULE_SUFFIXES = (".py", ".graphql")


def modules_on_disk() -> set[str]:
    found = set()
    for package, base in ROOTS.items():
        for path in (base / package).rglob("*"):
            if path.suffix in MODULE_SUFFIXES and "__pycache__" not in path.parts:
                found.add(path.relative_to(base).as_posix())
    return found


def modules_in_map() -> set[str]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    packages = "|".join(ROOTS)
    return set(re.findall(rf"`((?:{packages})/[\w/]+\.(?:py|graphql))`", text))


def test_given_the_code_map_then_it_names_every_module_on_disk() -> None:
    missing = sorted(modules_on_disk() - modules_in_map())

    assert missing == [], f"add these to the code map of docs/architecture.md: {missing}"


def test_given_the_code_map_then_every_module_it_names_exists() -> None:
    gone = sorted(modules_in_map() - modules_on_disk())

    assert gone == [], f"docs/architecture.md names modules that do not exist: {gone}"
