"""`local_api`: `chatkeep dev` over HTTP, shared by tests/security and tests/reliability (see support.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.support import shared_local_api


@pytest.fixture(scope="session")
def local_api(tmp_path_factory: Any) -> Any:
    return shared_local_api(tmp_path_factory)
