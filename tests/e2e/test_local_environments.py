"""`chatkeep dev`'s Lambda execution environments over HTTP (chatkeep_local.environments): one invocation at a time
per environment, state kept while warm, a timeout or a crash replaces the environment, throttling past the
function's reserved concurrency, START/END/REPORT lines, each function's own variables; and issue 20's burst of
64 simultaneous GET /openapi.json on a fresh runtime of the real template."""

from __future__ import annotations

import concurrent.futures
import re
import threading
from pathlib import Path

import pytest
from chatkeep_local.testing import LocalApiProcess

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Parameters:
  GateConcurrency:
    Type: Number
    Default: 0
Conditions:
  GateHasReservedConcurrency: !Not [!Equals [!Ref GateConcurrency, "0"]]
Globals:
  Function:
    Runtime: python3.13
    Handler: app.lambda_handler
    MemorySize: 256
    Timeout: 5
    Environment:
      Variables:
        COLOR: red
        GATE_DIR: {gate_dir}
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  StateFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: state/
      Events:
        State: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Path: "/state/{{action}}", Method: GET}}}}
        Late: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Path: "/late", Method: GET, TimeoutInMillis: 300}}}}
  BlueFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: state/
      Environment:
        Variables:
          COLOR: blue
          ONLY_BLUE: "yes"
      Events:
        Blue: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Path: "/blue/{{action}}", Method: GET}}}}
  GateFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: state/
      ReservedConcurrentExecutions: !If [GateHasReservedConcurrency, !Ref GateConcurrency, !Ref AWS::NoValue]
      Events:
        Gate: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Path: "/gate/{{action}}", Method: GET}}}}
  ShortFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: state/
      Timeout: 1
      ReservedConcurrentExecutions: 1
      Events:
        Short: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Path: "/short/{{action}}", Method: GET}}}}
"""

# Module-level state, as a handler's caches are: one environment's invocations see it grow, never overlap.
HANDLER = '''\
import json
import os
import time
from pathlib import Path

INVOCATIONS = 0
BUSY = False
OVERLAPS = 0


def lambda_handler(event, context):
    global INVOCATIONS, BUSY, OVERLAPS
    if BUSY:
        OVERLAPS += 1
    BUSY = True
    try:
        INVOCATIONS += 1
        action = event.get("pathParameters", {}).get("action") or event["rawPath"].strip("/")
        gate = Path(os.environ["GATE_DIR"])
        if action == "exit":
            os._exit(3)
        while action == "stall":
            time.sleep(0.05)
        if action in ("hang", "late"):  # tell the test we are running, then wait for it (or the timeout)
            (gate / f"{action}-started").touch()
            while not (gate / f"{action}-release").exists():
                time.sleep(0.01)
        if action == "many":
            time.sleep(0.02)  # long enough for the burst's requests to meet in the pool
        return {"statusCode": 200, "body": json.dumps({
            "pid": os.getpid(), "invocations": INVOCATIONS, "overlaps": OVERLAPS, "color": os.environ.get("COLOR"),
            "only_blue": os.environ.get("ONLY_BLUE"), "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "clock_offset": os.environ.get("CHATKEEP_CLOCK_OFFSET_SECONDS"),
            "task_root": os.environ["LAMBDA_TASK_ROOT"], "request_id": context.aws_request_id})}
    finally:
        BUSY = False
'''


@pytest.fixture(scope="module")
def envs_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("environments-app")
    gate = root / "gate"
    gate.mkdir()
    (root / "state").mkdir()
    (root / "state" / "app.py").write_text(HANDLER, encoding="utf-8")
    template = root / "template.yaml"
    template.write_text(TEMPLATE.format(gate_dir=gate), encoding="utf-8")
    api = LocalApiProcess(template, log_path=root / "dev.log", extra_args=["--parameter", "GateConcurrency=1"])
    api.gate = gate  # type: ignore[attr-defined]
    api.start()
    try:
        yield api
    finally:
        api.stop()


def get(api, path):
    resp = api.request("GET", path)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text


def reports(api, function):
    return [line for line in api.log_path.read_text(encoding="utf-8").splitlines()
            if f" {function} REPORT RequestId: " in line]


def wait_for(path: Path) -> None:
    event = threading.Event()
    while not path.exists():
        event.wait(0.01)


def test_given_warm_invocations_then_one_environment_keeps_its_state_and_reports_init_once(envs_api):
    _, first = get(envs_api, "/blue/hello")
    _, second = get(envs_api, "/blue/hello")
    assert second["pid"] == first["pid"] and second["invocations"] == first["invocations"] + 1
    lines = reports(envs_api, "BlueFunction")
    assert len(lines) == 2
    assert re.search(r"\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB\tMax Memory Used: \d+ MB"
                     r"\tInit Duration: [\d.]+ ms$", lines[0]), lines[0]
    assert "Init Duration" not in lines[1]
    log = envs_api.log_path.read_text(encoding="utf-8")
    assert f"BlueFunction START RequestId: {second['request_id']} Version: $LATEST" in log
    assert f"BlueFunction END RequestId: {second['request_id']}" in log
    # the init phase is logged once, before the first START (as CloudWatch orders them)
    assert log.count("BlueFunction INIT_START Runtime Version: python:3.") == 1
    assert log.index("BlueFunction INIT_START") < log.index(f"BlueFunction START RequestId: {first['request_id']}")


def test_given_simultaneous_requests_then_no_environment_sees_two_at_once(envs_api):
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: get(envs_api, "/state/many"), range(32)))
    assert [status for status, _ in answers] == [200] * 32
    by_pid: dict[int, list[int]] = {}
    for _, body in answers:
        assert body["overlaps"] == 0
        by_pid.setdefault(body["pid"], []).append(body["invocations"])
    for counts in by_pid.values():  # each environment counted its own invocations, one after the other
        assert sorted(counts) == list(range(min(counts), min(counts) + len(counts)))


def test_given_each_functions_environment_then_its_own_variables_only(envs_api):
    _, red = get(envs_api, "/state/env")
    _, blue = get(envs_api, "/blue/env")
    assert (red["color"], red["only_blue"], red["function"]) == ("red", None, "StateFunction")
    assert (blue["color"], blue["only_blue"], blue["function"]) == ("blue", "yes", "BlueFunction")
    assert red["task_root"].endswith("state")


def test_given_the_clock_moved_then_every_environment_sees_the_new_offset(envs_api):
    get(envs_api, "/blue/warm")  # an environment started before the clock moves
    offset = envs_api.advance_clock(120)
    _, body = get(envs_api, "/blue/clock")
    assert float(body["clock_offset"]) == offset
    envs_api.advance_clock(-120)


def test_given_a_handler_past_its_timeout_then_500_and_a_new_environment(envs_api):
    _, before = get(envs_api, "/short/before-timeout")  # ShortFunction has one environment at most
    status, body = get(envs_api, "/short/stall")  # never returns: its 1 s Timeout ends it
    assert (status, body) == (500, {"message": "Internal Server Error"})
    log = envs_api.log_path.read_text(encoding="utf-8")
    assert "Error: Task timed out after 1.00 seconds (Sandbox.Timedout)" in log
    assert re.search(r"ShortFunction REPORT .*\tDuration: [\d.]+ ms.*\tStatus: timeout$", log, re.MULTILINE)
    _, after = get(envs_api, "/short/after-timeout")
    assert after["pid"] != before["pid"] and after["invocations"] == 1
    assert "Init Duration" in reports(envs_api, "ShortFunction")[-1]


def test_given_a_handler_that_exits_then_500_and_the_runtime_keeps_serving(envs_api):
    status, body = get(envs_api, "/blue/exit")
    assert (status, body) == (500, {"message": "Internal Server Error"})
    log = envs_api.log_path.read_text(encoding="utf-8")
    assert "Error: Runtime exited with error: exit status 3 (Runtime.ExitError)" in log
    assert re.search(r"BlueFunction REPORT .*\tStatus: error\tError Type: Runtime.ExitError", log)
    status, body = get(envs_api, "/blue/again")
    assert status == 200 and body["invocations"] == 1  # a fresh environment: a cold start
    assert "Init Duration" in reports(envs_api, "BlueFunction")[-1]


def test_given_reserved_concurrency_1_and_a_busy_environment_then_the_next_request_is_throttled(envs_api):
    gate = envs_api.gate
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        busy = pool.submit(get, envs_api, "/gate/hang")
        wait_for(gate / "hang-started")
        throttled = get(envs_api, "/gate/other")
        (gate / "hang-release").touch()
        assert busy.result()[0] == 200
    assert throttled == (500, {"message": "Internal Server Error"})  # API Gateway's answer to a Lambda 429
    assert "GateFunction: throttled (1 of 1 environments busy)" in envs_api.log_path.read_text(encoding="utf-8")
    assert envs_api.health()["environments"]["GateFunction"]["limit"] == 1


def test_given_a_route_timeout_shorter_than_the_function_then_503_while_the_invocation_runs_on(envs_api):
    gate = envs_api.gate
    status, body = get(envs_api, "/late")  # TimeoutInMillis 300: API Gateway stops waiting first
    assert (status, body) == (503, {"message": "Service Unavailable"})
    wait_for(gate / "late-started")
    (gate / "late-release").touch()  # the environment was still running it: it ends normally


def test_given_a_fresh_runtime_then_64_simultaneous_openapi_requests_all_answer_200(tmp_path):
    api = LocalApiProcess(REPO / "template.yaml", log_path=tmp_path / "dev.log", cwd=REPO,
                          extra_args=["--no-stream", "--ttl-interval", "3600"]).start()
    try:
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            statuses = list(pool.map(lambda _: api.request("GET", "/openapi.json").status_code, range(64)))
    finally:
        api.stop()
    assert statuses == [200] * 64
