"""Property-based testing of the REST API with schemathesis, against `chatkeep dev`'s /openapi.json:
every operation, bounded examples, a fixed seed, every check but `unsupported_method` (see below), no failure.

Two sizes, the same operations, seed and checks: `make test` (CI) draws 25 examples per operation (about
20 s: ~1,100 requests, most of them the coverage phase's, which runs in full at any size); `make load` draws
100 (about a minute, ~2,500 requests): CHATKEEP_FUZZ_EXAMPLES=N picks any size. It runs against the test
run's shared runtime (`local_api`), in a workspace of its own, and drains the stream when done.

The command (also in docs/testing.md ("REST"); `T` is a token of `chatkeep token`):

    SCHEMATHESIS_HOOKS=tests.e2e.test_schemathesis schemathesis run http://127.0.0.1:3000/openapi.json \\
        --header "Authorization: Bearer $T" --max-examples 25 --seed 20261121 --checks all \\
        --exclude-checks unsupported_method

This module is also that hooks module: `before_call` makes each generated Idempotency-Key unique. Schemathesis
draws keys from a tiny space ("0", "A", ...) and would reuse one with another body, which the API rightly
refuses (422 idempotency_key_reused); a real client uses one key per logical request. Reuse is tested on
purpose in tests/integration/test_rest_api.py and tests/e2e/test_rest_e2e.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

try:
    import schemathesis
except ImportError:  # pragma: no cover - schemathesis is a dev dependency
    schemathesis = None

REPO = Path(__file__).resolve().parents[2]
SEED = 20261121
CI_EXAMPLES = 25
MAX_EXAMPLES = int(os.environ.get("CHATKEEP_FUZZ_EXAMPLES", str(CI_EXAMPLES)))  # `make load`: 100
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

def _unique_key(headers: Any) -> None:
    for name, value in list((headers or {}).items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and _KEY.match(value):
            headers[name] = f"{value[:200]}.{uuid.uuid4().hex}"


if schemathesis is not None:

    @schemathesis.hook
    def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
        data = getattr(getattr(getattr(case, "meta", None), "phase", None), "data", None)
        if "missing" in str(getattr(data, "scenario", "") or ""):
            return  # a probe for a missing header (Authorization): leave the case exactly as generated
        _unique_key(case.headers)


def _cli() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    return str(found) if found.exists() else (shutil.which("schemathesis") or "schemathesis")


@pytest.mark.slow
def test_schemathesis_finds_no_failure(local_api: Any, tmp_path: Path) -> None:
    if schemathesis is None:
        pytest.skip("schemathesis is not installed")
    # A service principal reaches every operation (it may create agents and post assistant messages).
    token = local_api.token("fuzz-bot", f"ws-fuzz-{uuid.uuid4().hex[:8]}", scope="chatkeep/service")
    command = [
        _cli(), "run", f"{local_api.base_url}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--checks", "all",
        # API Gateway routes by "METHOD /path": a method without a route never reaches the function and the
        # gateway answers 404 (HTTP APIs have no 405), so `unsupported_method` cannot hold for any HTTP API.
        "--exclude-checks", "unsupported_method",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.test_schemathesis", "PYTHONPATH": str(REPO),
           "NO_COLOR": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    output = result.stdout + result.stderr
    local_api.drain()  # the fuzzed writes' stream records, so the tests after this one start from a quiet stream
    assert result.returncode == 0, output[-20000:]
    operations = 18  # every REST operation of /openapi.json (tests/unit/test_rest_schemas.py counts them too)
    assert f"Selected: {operations}/{operations}" in output and f"Tested: {operations}" in output, output[-3000:]
