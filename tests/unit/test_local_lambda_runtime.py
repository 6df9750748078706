"""chatkeep_local.lambda_runtime: functions that share one process (and the layer's one Powertools logger) still
log under their own names when they run at the same time, as they would in Lambda where each has a process."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from chatkeep_local.lambda_runtime import FunctionInvoker
from chatkeep_local.template import FunctionSpec

# One logger shared by both functions, as the layer's chatkeep.observability.logger is. Each handler appends its
# keys (inject_lambda_context), waits until the other has appended too, then logs: the worst interleaving.
SHARED = '''
import threading
from aws_lambda_powertools import Logger

logger = Logger(service="{service}")  # a logger of its own per test: its handler writes to that test's stdout
both_appended = threading.Barrier({parties}, timeout=10)
'''
HANDLER = '''
from shared_log import both_appended, logger


@logger.inject_lambda_context
def lambda_handler(event, context):
    both_appended.wait()
    logger.info("handled", extra={"who": event["who"]})
    return {"ok": True}
'''


@pytest.fixture(autouse=True)
def fresh_layer(monkeypatch):
    """Each test imports its own `shared_log` (the invoker puts layers on sys.path and imports by name)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "shared_log", raising=False)
    yield
    sys.modules.pop("shared_log", None)


def spec(root: Path, name: str) -> FunctionSpec:
    code = root / name
    code.mkdir()
    (code / "app.py").write_text(HANDLER, encoding="utf-8")
    return FunctionSpec(logical_id=name, code_uri=code, handler="app.lambda_handler", runtime="python3.13",
                        timeout=10, memory_size=256, environment={}, layers=[root / "layer"],
                        function_name=f"app-{name}")


def test_given_two_functions_logging_at_once_then_each_line_names_its_own_function(tmp_path, capsys):
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "shared_log.py").write_text(SHARED.format(service="race", parties=2), encoding="utf-8")
    invokers = {name: FunctionInvoker(spec(tmp_path, name)) for name in ("ApiFn", "StreamFn")}
    for invoker in invokers.values():
        invoker.handler()  # loaded (cold) before the race

    threads = [threading.Thread(target=inv.invoke, args=({"who": name},)) for name, inv in invokers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert sorted((line["who"], line["function_name"]) for line in lines) == [
        ("ApiFn", "app-ApiFn"), ("StreamFn", "app-StreamFn")]
    assert all(line["function_arn"].endswith(f":function:app-{line['who']}") for line in lines)
    assert all(line["cold_start"] is True for line in lines)  # each function's first invocation


def test_given_a_second_invocation_then_it_is_warm_and_its_keys_do_not_outlive_it(tmp_path, capsys):
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "shared_log.py").write_text(SHARED.format(service="warm", parties=1), encoding="utf-8")
    invoker = FunctionInvoker(spec(tmp_path, "OnlyFn"))

    invoker.invoke({"who": "OnlyFn"})
    invoker.invoke({"who": "OnlyFn"})

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["cold_start"] for line in lines] == [True, False]
    assert LambdaPowertoolsFormatter().thread_safe_get_current_keys() == {}
