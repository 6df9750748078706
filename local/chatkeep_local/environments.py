"""Lambda execution environments for `chatkeep dev`: per function, a pool of worker processes
(chatkeep_local.lambda_worker), each a fresh interpreter that imports the handler once (init) and then serves one
invocation at a time, reused while warm. The pool scales out on demand (a new environment is a cold start) up to
the function's concurrency limit (`ReservedConcurrentExecutions`, else DEFAULT_CONCURRENCY); past it an invocation
is throttled (`Throttled`) or, for the event-source pollers, waits. An environment that runs past the function's
Timeout is killed and replaced (`Sandbox.Timedout`), one that dies (`os._exit`, a signal) is replaced on the next
invocation (`Runtime.ExitError`). Each invocation logs CloudWatch's START / END / REPORT lines. See
docs/local-runtime.md#execution-environments."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from chatkeep_local.lambda_worker import recv_frame, send_frame
from chatkeep_local.template import FunctionSpec

log = logging.getLogger("chatkeep_local.lambda")

# Environments per function when the template reserves none. A burst of 64 requests to one function must find 64
# environments (docs/local-runtime.md): Lambda's account default is 1,000, a laptop's memory is the bound here.
DEFAULT_CONCURRENCY = 64
# An environment idle this long is stopped (Lambda keeps idle ones for minutes, then reclaims them).
IDLE_TIMEOUT_S = 300.0
INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit (on-demand)
# Environments of one function initialising at once. Lambda inits each on a host of its own; here they share the
# laptop's cores, and 64 imports at once would each run past the init limit. A request that finds no idle
# environment and no free init slot waits for whichever comes first (docs/local-runtime.md).
PARALLEL_INITS = max(2, os.cpu_count() or 2)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])  # where chatkeep_local is importable from
# How the Go runtime interface Lambda uses names the signals it reports ("signal: killed").
_SIGNAL_NAMES = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGSEGV: "segmentation fault",
                 signal.SIGABRT: "aborted", signal.SIGINT: "interrupt", signal.SIGBUS: "bus error"}


class InvocationError(Exception):
    """The invocation failed as Lambda reports it: `error` is the document Invoke returns
    (`errorMessage`, `errorType`, ...)."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}")
        self.error = error


class Throttled(InvocationError):
    """Every environment the function may have is busy (Lambda's TooManyRequestsException)."""


class IntegrationTimeout(Exception):
    """The caller stopped waiting (API Gateway's integration timeout); the invocation goes on to its own end."""


def reserved_variables(spec: FunctionSpec, log_stream: str) -> dict[str, str]:
    """What Lambda sets in every environment of the function."""
    name = spec.function_name or spec.logical_id
    return {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python3.13'}",
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
        "_HANDLER": spec.handler,
        # What `sam local` sets in its containers: Powertools' tracer stays off even when the template turns X-Ray
        # on (no daemon here), as it did when the functions ran without LAMBDA_TASK_ROOT.
        "AWS_SAM_LOCAL": "true",
    }


def own_environment(spec: FunctionSpec, process_env: Mapping[str, str], merged: Mapping[str, str],
                    overrides: Mapping[str, str]) -> dict[str, str]:
    """An environment's variables: the runtime process's (where it set the endpoints, credentials, region and
    defaults every function gets, over `merged`, every function's variables in one), with the function's own put
    back: its value, or unset when only other functions declare the variable. What the runtime or `--env`
    (`overrides`) set over a declared variable stays."""
    env = dict(process_env)
    for name, value in merged.items():
        if name in overrides or env.get(name) != value:
            continue  # set by the runtime or by --env, not the template's merged value
        if name in spec.environment:
            env[name] = spec.environment[name]
        else:
            env.pop(name, None)
    return env


def report_line(request_id: str, duration_ms: float, spec: FunctionSpec, max_memory_mb: int,
                init_ms: float | None = None, status: str | None = None, error_type: str | None = None) -> str:
    line = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: "
            f"{max(1, math.ceil(duration_ms))} ms\tMemory Size: {spec.memory_size} MB\tMax Memory Used: "
            f"{max_memory_mb} MB")
    if init_ms is not None:
        line += f"\tInit Duration: {init_ms:.2f} ms"
    if status:
        line += f"\tStatus: {status}"
    if error_type:
        line += f"\tError Type: {error_type}"
    return line


class _Ended(Exception):
    """The environment is gone: `status`/`error_type` for the REPORT line, `error` for the caller."""

    def __init__(self, error: dict[str, Any], status: str, error_type: str | None = None):
        super().__init__(error["errorMessage"])
        self.error, self.status, self.error_type = error, status, error_type


class Environment:
    """One worker process of one function; used by one invocation at a time (the pool sees to it)."""

    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str]):
        self.spec = spec
        self.log_stream = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        parent, child = socket.socketpair()
        env = {**environment, **reserved_variables(spec, self.log_stream)}
        inherited = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]  # cwd changes
        paths = [str(spec.code_uri), *(str(p.resolve()) for p in spec.layers), *inherited, _PACKAGE_ROOT]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"  # the function's log lines as they are written, not at exit
        self.started = time.perf_counter()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "chatkeep_local.lambda_worker", str(child.fileno())],
                pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL, cwd=str(spec.code_uri),
            )
        finally:
            child.close()
        self.sock = parent
        self.init_ms: float | None = None  # until reported on the first invocation's REPORT line
        self.last_used = time.monotonic()
        self.max_memory_mb = 0
        self.alive = True

    def init(self, request_id: str) -> None:
        """The init phase: send the configuration, wait for the handler to be imported."""
        self._send(request_id, {
            "logical_id": self.spec.logical_id, "function_name": self.spec.function_name, "arn": self.spec.arn,
            "memory_size": self.spec.memory_size, "timeout": self.spec.timeout, "code_uri": str(self.spec.code_uri),
            "handler": self.spec.handler, "layers": [str(p) for p in self.spec.layers]})
        reply = self._receive(request_id, max(INIT_TIMEOUT_S, self.spec.timeout))
        self.init_ms = (time.perf_counter() - self.started) * 1000
        self.max_memory_mb = int(reply.get("max_memory_mb") or 0)
        if reply["type"] == "init_error":
            self.stop()
            raise _Ended({**reply["error"], "requestId": request_id}, "error", reply["error"]["errorType"])

    def invoke(self, event: Any, request_id: str, clock_offset: float) -> dict[str, Any]:
        self._send(request_id, {"event": event, "request_id": request_id, "clock_offset": clock_offset})
        reply = self._receive(request_id, self.spec.timeout)
        self.last_used = time.monotonic()
        self.max_memory_mb = int(reply.get("max_memory_mb") or self.max_memory_mb)
        return reply

    def _send(self, request_id: str, message: dict[str, Any]) -> None:
        try:
            send_frame(self.sock, message)
        except OSError:  # it is gone already
            self._exited(request_id)

    def _receive(self, request_id: str, timeout: float) -> dict[str, Any]:
        self.sock.settimeout(timeout)
        try:
            return recv_frame(self.sock)
        except TimeoutError:
            self.stop()
            message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
            raise _Ended({"errorType": "Sandbox.Timedout", "errorMessage": message}, "timeout") from None
        except (EOFError, OSError):
            self._exited(request_id)

    def _exited(self, request_id: str) -> NoReturn:
        code = self.process.wait()
        self.stop()
        if code < 0:
            number = signal.Signals(-code)
            why = f"signal: {_SIGNAL_NAMES.get(number, number.name)}"
        else:
            why = f"exit status {code}"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {why}"
        raise _Ended({"errorType": "Runtime.ExitError", "errorMessage": message}, "error", "Runtime.ExitError")

    def stop(self) -> None:
        """Kill the process (Lambda does not ask an environment it reclaims) and reap it."""
        self.alive = False
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.sock.close()


class EnvironmentPool:
    """The execution environments of one function, behind the `invoke(event, request_id)` of
    lambda_runtime.FunctionInvoker: the result, or InvocationError (Throttled when `throttle` and at the limit)."""

    enforces_timeout = True  # an invocation past the function's Timeout ends in Sandbox.Timedout, here

    def __init__(self, spec: FunctionSpec, environment: Callable[[], Mapping[str, str]],
                 clock_offset: Callable[[], float] = lambda: 0.0, limit: int | None = None):
        self.spec = spec
        # Reserved 0 throttles every invocation, as in Lambda (a poller waits until chatkeep dev stops).
        self.limit = next(n for n in (limit, spec.reserved_concurrency, DEFAULT_CONCURRENCY) if n is not None)
        self._environment = environment  # read at each cold start: endpoints set after the pool was made count
        self._clock_offset = clock_offset
        self._idle: list[Environment] = []  # the most recently used last: reused first
        self._count = 0  # idle + busy + starting
        self._starting = 0  # in their init phase
        self._all: set[Environment] = set()  # idle + busy
        self._cond = threading.Condition()
        self._stopped = False

    @property
    def exists(self) -> bool:
        return self.spec.module_file.is_file()

    def status(self) -> dict[str, int]:
        with self._cond:
            return {"environments": self._count, "idle": len(self._idle), "limit": self.limit}

    def invoke(self, event: Any, request_id: str | None = None, *, throttle: bool = False) -> Any:
        """Run one invocation in an environment: a warm idle one, else a new one (cold start) within the limit,
        else throttled (`throttle`) or wait for one to be free (what the event-source pollers do)."""
        request_id = request_id or str(uuid.uuid4())
        env = self._acquire(throttle, request_id)
        try:
            return self._run(env, event, request_id)
        finally:
            self._release(env)

    def invoke_within(self, event: Any, seconds: float, request_id: str | None = None, *,
                      throttle: bool = False) -> Any:
        """`invoke`, but the caller waits `seconds` at most (IntegrationTimeout) while the invocation runs on to
        its own end, as behind API Gateway's integration timeout."""
        if self.spec.timeout <= seconds:  # the function's own timeout comes first: nothing to outwait
            return self.invoke(event, request_id, throttle=throttle)
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                outcome["result"] = self.invoke(event, request_id, throttle=throttle)
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name=f"invoke-{self.spec.logical_id}", daemon=True).start()
        if not done.wait(seconds):
            raise IntegrationTimeout(f"{self.spec.logical_id}: no answer within {seconds:.0f} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    # ------------------------------------------------------------------------------------- internals
    def _acquire(self, throttle: bool, request_id: str) -> Environment:
        with self._cond:
            while True:
                if self._stopped:
                    raise InvocationError({"errorType": "ServiceException", "errorMessage": "chatkeep dev stopped"})
                while self._idle:
                    idle = self._idle.pop()
                    if idle.process.poll() is None:
                        return idle
                    self._count -= 1  # it died while idle (killed from outside): a new one takes its place
                    self._all.discard(idle)
                    idle.stop()
                if self._count < self.limit and self._starting < PARALLEL_INITS:
                    self._count += 1
                    self._starting += 1
                    break
                if throttle and self._count >= self.limit:
                    log.warning("%s: throttled (%d of %d environments busy)", self.spec.logical_id, self._count,
                                self.limit)
                    raise Throttled({"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded.",
                                     "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                                     "requestId": request_id})
                self._cond.wait()
        try:
            env = Environment(self.spec, self._environment())
        except BaseException:
            self._initialised()
            self._release(None)
            raise
        with self._cond:
            self._all.add(env)
        return env

    def _release(self, env: Environment | None) -> None:
        """Back to the idle ones while alive; else its place is free for a new one."""
        with self._cond:
            if env is not None and env.alive and not self._stopped:
                self._idle.append(env)
            else:
                self._count -= 1
                if env is not None:
                    self._all.discard(env)
            self._cond.notify()
        if env is not None and (self._stopped or not env.alive):
            env.stop()

    def _run(self, env: Environment, event: Any, request_id: str) -> Any:
        lid = self.spec.logical_id
        started = time.perf_counter()
        cold = env.init_ms is None
        try:
            if cold:  # as in CloudWatch: INIT_START, the init phase's own lines, then START
                log.info("%s INIT_START Runtime Version: python:%d.%d", lid, *sys.version_info[:2])
                try:
                    env.init(request_id)
                finally:
                    self._initialised()
            log.info("%s START RequestId: %s Version: $LATEST", lid, request_id)
            started = time.perf_counter()
            reply = env.invoke(event, request_id, self._clock_offset())
        except _Ended as ended:
            log.error("%s %s (%s)", lid, ended.error["errorMessage"], ended.error["errorType"])
            self._report(request_id, (time.perf_counter() - started) * 1000, env, cold, ended.status,
                         ended.error_type)
            raise InvocationError({**ended.error, "requestId": request_id}) from None
        self._report(request_id, float(reply["duration_ms"]), env, cold)
        if reply["type"] == "error":
            raise InvocationError(reply["error"])
        return json.loads(reply["payload"])

    def _initialised(self) -> None:
        with self._cond:
            self._starting -= 1
            self._cond.notify()

    def _report(self, request_id: str, duration_ms: float, env: Environment, cold: bool, status: str | None = None,
                error_type: str | None = None) -> None:
        lid = self.spec.logical_id
        log.info("%s END RequestId: %s", lid, request_id)
        log.info("%s %s", lid, report_line(request_id, duration_ms, self.spec, env.max_memory_mb,
                                           env.init_ms if cold else None, status, error_type))

    def reap(self, idle_for: float = IDLE_TIMEOUT_S) -> int:
        """Stop the environments idle longer than `idle_for` seconds; returns how many."""
        cutoff = time.monotonic() - idle_for
        with self._cond:
            old = [env for env in self._idle if env.last_used < cutoff]
            self._idle = [env for env in self._idle if env.last_used >= cutoff]
            self._count -= len(old)
            self._all.difference_update(old)
        for env in old:
            env.stop()
        return len(old)

    def stop(self) -> None:
        """Stop every environment, busy ones too (their invocations end as Runtime.ExitError)."""
        with self._cond:
            self._stopped = True
            self._idle = []
            everyone, self._all = list(self._all), set()
            self._cond.notify_all()
        for env in everyone:
            env.stop()


class Reaper(threading.Thread):
    """Stops environments idle longer than IDLE_TIMEOUT_S, every `interval` seconds; `stop()` stops them all."""

    def __init__(self, pools: Mapping[str, EnvironmentPool], interval: float = 30.0):
        super().__init__(name="lambda-environment-reaper", daemon=True)
        self.pools, self.interval = pools, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            for pool in self.pools.values():
                pool.reap()

    def stop(self) -> None:
        self._stop_event.set()
        for pool in self.pools.values():
            pool.stop()


__all__ = ["DEFAULT_CONCURRENCY", "IDLE_TIMEOUT_S", "EnvironmentPool", "IntegrationTimeout", "InvocationError",
           "Reaper", "Throttled", "own_environment", "report_line", "reserved_variables"]
