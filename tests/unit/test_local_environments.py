"""chatkeep_local.environments without `chatkeep dev`: a pool of worker processes for a tiny handler. The HTTP
answers are in tests/e2e/test_local_environments.py."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from chatkeep_local.environments import (
    EnvironmentPool,
    IntegrationTimeout,
    InvocationError,
    Throttled,
    own_environment,
    report_line,
)
from chatkeep_local.template import FunctionSpec

HANDLER = '''\
import os
import sys
import time
from pathlib import Path

CALLS = 0


def lambda_handler(event, context):
    global CALLS
    CALLS += 1
    if event.get("wait_for"):  # tell the test we run, then block until it says so
        Path(event["wait_for"] + ".started").touch()
        while not Path(event["wait_for"]).exists():
            time.sleep(0.005)
    if event.get("raise"):
        raise KeyError("missing")
    if event.get("exit"):
        sys.exit(5)
    if event.get("unserialisable"):
        return object()
    return {"pid": os.getpid(), "calls": CALLS, "mine": os.environ.get("MINE"),
            "remaining": context.get_remaining_time_in_millis(), "arn": context.invoked_function_arn,
            "handler": os.environ["_HANDLER"], "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]}
'''


@pytest.fixture
def spec(tmp_path) -> FunctionSpec:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(HANDLER, encoding="utf-8")
    return FunctionSpec(logical_id="TinyFunction", code_uri=code, handler="app.lambda_handler",
                        runtime="python3.13", timeout=5, memory_size=256, environment={"MINE": "tiny"},
                        function_name="chatkeep-tiny")


@pytest.fixture
def pool(spec):
    pool = EnvironmentPool(spec, environment=lambda: {**os.environ, **spec.environment}, limit=1)
    yield pool
    pool.stop()


def test_given_a_warm_environment_then_its_module_state_grows_and_it_has_the_functions_variables(pool):
    first, second = pool.invoke({}), pool.invoke({})
    assert second["pid"] == first["pid"] != os.getpid()
    assert (first["calls"], second["calls"]) == (1, 2)
    assert (first["mine"], first["handler"], first["memory"]) == ("tiny", "app.lambda_handler", "256")
    assert first["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:chatkeep-tiny"
    assert 0 < first["remaining"] <= 5000


def test_given_a_handler_that_raises_then_lambdas_error_document_and_the_environment_stays(pool):
    warm = pool.invoke({})
    with pytest.raises(InvocationError) as raised:
        pool.invoke({"raise": True}, request_id="r-1")
    error = raised.value.error
    assert (error["errorType"], error["errorMessage"], error["requestId"]) == ("KeyError", "'missing'", "r-1")
    assert any("app.py" in frame for frame in error["stackTrace"])
    assert pool.invoke({})["pid"] == warm["pid"]


def test_given_an_unserialisable_result_then_a_marshal_error(pool):
    with pytest.raises(InvocationError) as raised:
        pool.invoke({"unserialisable": True})
    assert raised.value.error["errorType"] == "Runtime.MarshalError"


def test_given_an_environment_that_exits_then_exit_error_and_a_cold_start_next(pool):
    before = pool.invoke({})
    with pytest.raises(InvocationError) as raised:
        pool.invoke({"exit": True}, request_id="r-2")
    assert raised.value.error == {"errorType": "Runtime.ExitError", "requestId": "r-2",
                                  "errorMessage": "RequestId: r-2 Error: Runtime exited with error: exit status 5"}
    after = pool.invoke({})
    assert after["pid"] != before["pid"] and after["calls"] == 1


def test_given_the_one_environment_busy_then_throttled_or_waiting(pool, tmp_path):
    gate = tmp_path / "gate"
    outcome = {}
    busy = threading.Thread(target=lambda: outcome.setdefault("busy", pool.invoke({"wait_for": str(gate)})))
    busy.start()
    started = Path(str(gate) + ".started")
    while not started.exists():
        threading.Event().wait(0.01)
    with pytest.raises(Throttled) as raised:
        pool.invoke({}, throttle=True)
    assert raised.value.error["errorType"] == "TooManyRequestsException"
    waiter = threading.Thread(target=lambda: outcome.setdefault("waited", pool.invoke({})))  # a poller waits
    waiter.start()
    gate.touch()
    busy.join()
    waiter.join()
    assert outcome["waited"]["pid"] == outcome["busy"]["pid"]


def test_given_a_caller_that_stops_waiting_then_integration_timeout_while_the_invocation_runs_on(pool, tmp_path):
    gate = tmp_path / "late"
    with pytest.raises(IntegrationTimeout):
        pool.invoke_within({"wait_for": str(gate)}, 0.05)
    gate.touch()
    assert pool.invoke({})["calls"] == 2  # the same environment finished the late one, then took this one


def test_report_line_has_cloudwatchs_fields():
    spec = FunctionSpec(logical_id="F", code_uri=Path("."), handler="app.h", runtime="python3.13", timeout=3,
                        memory_size=512, environment={})
    assert report_line("id-1", 12.344, spec, 61, init_ms=345.678) == (
        "REPORT RequestId: id-1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 61 MB\tInit Duration: 345.68 ms")
    assert report_line("id-2", 3000.0, spec, 40, status="error", error_type="Runtime.ExitError").endswith(
        "\tStatus: error\tError Type: Runtime.ExitError")


def test_given_a_handler_that_cannot_be_imported_then_import_module_error_every_time(spec):
    (spec.code_uri / "app.py").write_text("import not_a_module_anywhere\n", encoding="utf-8")
    pool = EnvironmentPool(spec, environment=lambda: dict(os.environ))
    try:
        for _ in range(2):  # the init is tried again by the next invocation, as Lambda does
            with pytest.raises(InvocationError) as raised:
                pool.invoke({})
            assert raised.value.error["errorType"] == "Runtime.ImportModuleError"
            assert raised.value.error["errorMessage"] == (
                "Unable to import module 'app': No module named 'not_a_module_anywhere'")
    finally:
        pool.stop()


def test_given_variables_of_several_functions_then_each_environment_gets_its_own_and_the_runtimes(spec):
    merged = {"MINE": "tiny", "THEIRS": "other", "DYNAMODB_ENDPOINT_URL": ""}
    process = {**merged, "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:5000", "PATH": "/bin", "FORCED": "x"}
    env = own_environment(spec, process, {**merged, "FORCED": "template"}, overrides={"FORCED": "x"})
    assert env == {"MINE": "tiny", "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:5000", "PATH": "/bin", "FORCED": "x"}


def test_given_an_idle_environment_killed_from_outside_then_the_next_invocation_gets_a_new_one(pool):
    import signal

    first = pool.invoke({})
    os.kill(first["pid"], signal.SIGKILL)
    stat = Path(f"/proc/{first['pid']}/stat")
    while stat.exists() and stat.read_text().split()[2] not in ("Z", "X"):  # dead, not yet reaped by the pool
        threading.Event().wait(0.01)
    second = pool.invoke({})
    assert second["pid"] != first["pid"] and second["calls"] == 1
