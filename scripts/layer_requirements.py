"""Write layers/common/requirements.txt from pyproject.toml's `dependencies` (the one list of the layer's
runtime dependencies). `make requirements` runs it; `--check` exits 1 when the file differs
(tests/unit/test_packaging.py holds the two together).

    python scripts/layer_requirements.py [--check]
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
REQUIREMENTS = ROOT / "layers" / "common" / "requirements.txt"
# The Lambda python3.13 runtime ships these: the layer would only carry a second copy.
PROVIDED_BY_LAMBDA = frozenset({"boto3", "botocore"})
HEADER = """\
# Generated from pyproject.toml [project].dependencies by `make requirements`: edit pyproject.toml, not this.
# Installed into the CommonLayer by `sam build` (BuildMethod: python3.13).
# boto3/botocore come with the Lambda python3.13 runtime.
"""


def distribution_name(requirement: str) -> str:
    """`aws-lambda-powertools[parser]>=3.20,<4` -> `aws-lambda-powertools` (PEP 503 normalised)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def render(pyproject: Path = PYPROJECT) -> str:
    dependencies = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    lines = [dep for dep in dependencies if distribution_name(dep) not in PROVIDED_BY_LAMBDA]
    return HEADER + "".join(f"{line}\n" for line in lines)


def main(argv: list[str]) -> int:
    wanted = render()
    if "--check" in argv:
        if REQUIREMENTS.read_text(encoding="utf-8") != wanted:
            print(f"{REQUIREMENTS.relative_to(ROOT)} is out of date: run `make requirements`", file=sys.stderr)
            return 1
        return 0
    REQUIREMENTS.write_text(wanted, encoding="utf-8")
    print(f"wrote {REQUIREMENTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
