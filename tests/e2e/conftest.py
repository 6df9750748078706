"""tests/e2e: every test here is marked `e2e`. They drive `chatkeep dev` over HTTP through the `local_api`
fixture of tests/conftest.py (one runtime for the whole test run, shared with tests/security and
tests/reliability) or, for the local runtime's own tests, a sample application of their own."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
