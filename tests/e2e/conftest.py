"""e2e fixtures: `chatkeep dev` started once per session on a free port, driven over HTTP.

`local_api` (session scope) has:
  base_url                      e.g. http://127.0.0.1:53127
  log_path                      the runtime's stdout+stderr (its request log, the functions' logs)
  token(sub, workspace, name=None, scope=None, **claims) -> str   a bearer token the runtime accepts
  gql(query, variables=None, token=None) -> dict                 the JSON answer of POST /graphql
  request(method, path, token=None, **requests_kwargs) -> requests.Response
  drain() -> dict               wait until the stream poller has processed everything in the stream
  advance_clock(seconds) -> float   move chatkeep.clock in the runtime (cumulative, whole session)
  sweep_ttl() -> int            run one TTL sweep now (deletes items whose TTL <= the runtime's now)
  health() -> dict, dlq() -> list
The clock and the tables are shared by the whole session: use your own workspace ids per test.
CHATKEEP_E2E_TEMPLATE=path runs the session against another template (default: template.yaml).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chatkeep_local.testing import LocalApiProcess

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def local_api(tmp_path_factory):
    template = Path(os.environ.get("CHATKEEP_E2E_TEMPLATE") or REPO / "template.yaml")
    if not template.is_file():
        pytest.skip("template.yaml not written yet")
    logs = tmp_path_factory.mktemp("local-runtime")
    api = LocalApiProcess(template, cwd=REPO, log_path=logs / "chatkeep-dev.log")
    api.start()
    try:
        yield api
    finally:
        api.stop()
