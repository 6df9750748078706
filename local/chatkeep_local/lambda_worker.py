"""One Lambda execution environment: the child process `chatkeep dev` starts per environment
(`python -m chatkeep_local.lambda_worker FD`, chatkeep_local.environments is the parent's side).

It talks to the parent over the socket inherited as FD, in length-prefixed JSON frames; stdout and stderr stay the
function's log, as in Lambda. The first frame is the function's configuration: the worker imports the handler once
(the init phase, timed), answers `ready` (or the init error), then serves one `invoke` at a time until the socket
reaches EOF (the parent stopped or died: no orphans). Only the standard library is imported here, so what the
environment holds besides the function's code is what Lambda's Python runtime would hold.

Also the one place for what every local invocation shares: the context object (`LambdaContext`), loading a handler
by file path (`load_handler`) and Lambda's error document (`lambda_error`)."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import socket
import struct
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

RUNTIME_DIR = Path(__file__).resolve().parent  # frames in here are the runtime's, not the handler's
_HEADER = struct.Struct(">I")


# ------------------------------------------------------------------------------------------------ frames
def send_frame(sock: socket.socket, message: Any) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(_HEADER.pack(len(data)) + data)


def recv_frame(sock: socket.socket) -> Any:
    """The next message; EOFError when the other side closed (or closed mid-frame)."""
    (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
    return json.loads(_recv_exactly(sock, size))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("socket closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------------- the function
class LambdaContext:
    """The attributes and method of the Python runtime's context object. `spec` is a template.FunctionSpec or
    anything with its `logical_id`, `function_name`, `arn`, `memory_size` and `timeout`."""

    def __init__(self, spec: Any, request_id: str | None = None):
        name = spec.function_name or spec.logical_id
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_size
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME") or (
            time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex)
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class HandlerNotFound(RuntimeError):
    pass


class FunctionConfig:
    """What the worker is told about its function (the FunctionSpec attributes load_handler and the context read).
    Its two properties repeat FunctionSpec's on purpose: importing template.py (PyYAML, the template's whole model)
    into every environment would add to each cold start and to the modules the handler finds loaded."""

    def __init__(self, data: dict[str, Any]):
        self.logical_id: str = data["logical_id"]
        self.function_name: str | None = data.get("function_name")
        self.arn: str = data["arn"]
        self.memory_size: int = int(data["memory_size"])
        self.timeout: float = float(data["timeout"])
        self.code_uri = Path(data["code_uri"])
        self.handler: str = data["handler"]
        self.layers = [Path(p) for p in data.get("layers", [])]

    @property
    def module_file(self) -> Path:
        return self.code_uri / (self.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


def module_name(logical_id: str) -> str:
    return f"chatkeep_fn_{logical_id}"


def load_handler(spec: Any) -> Callable[[dict[str, Any], Any], Any]:
    """Import `<CodeUri>/<module>.py` under a unique name and return its handler function.
    The CodeUri folder and the function's layers go on sys.path, as they would be in Lambda."""
    path = spec.module_file
    if not path.is_file():
        raise HandlerNotFound(f"{spec.logical_id}: {path} does not exist")
    for extra in [*(p.resolve() for p in spec.layers), spec.code_uri]:
        if str(extra) not in sys.path:
            sys.path.append(str(extra))
    name = module_name(spec.logical_id)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise HandlerNotFound(f"{spec.logical_id}: cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    handler = getattr(module, spec.handler_name, None)
    if not callable(handler):
        raise HandlerNotFound(f"{spec.logical_id}: {path} has no callable {spec.handler_name}")
    return handler


def lambda_error(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The document Lambda's Python runtime returns for a function that raised: the handler's frames only."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not Path(f.filename).is_relative_to(RUNTIME_DIR)]
    return {"errorMessage": str(exc), "errorType": type(exc).__name__, "requestId": request_id,
            "stackTrace": traceback.format_list(frames)}


def marshal_error(exc: BaseException, request_id: str) -> dict[str, Any]:
    """A result Lambda cannot serialise."""
    return {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError",
            "requestId": request_id, "stackTrace": []}


def log_error(error: dict[str, Any]) -> None:
    """The runtime's `[ERROR]` line in the function's log, before the document is returned."""
    print(f"[ERROR] {error['errorType']}: {error['errorMessage']}\nTraceback (most recent call last):\n"
          + "".join(error["stackTrace"]), file=sys.stderr, end="", flush=True)


def init_error(exc: BaseException, config: FunctionConfig) -> dict[str, Any]:
    """What Lambda's Python runtime reports when the handler cannot be imported."""
    error = lambda_error(exc, "")
    module = config.handler.rsplit(".", 1)[0]
    if isinstance(exc, HandlerNotFound):
        error["errorType"] = "Runtime.HandlerNotFound"
    elif isinstance(exc, ImportError):
        error["errorType"] = "Runtime.ImportModuleError"
        error["errorMessage"] = f"Unable to import module '{module}': {exc}"
    elif isinstance(exc, SyntaxError):
        error["errorType"] = "Runtime.UserCodeSyntaxError"
        error["errorMessage"] = f"Unable to import module '{module}': {exc}"
    return error


# ----------------------------------------------------------------------------------------- the loop
def _set_clock_offset(seconds: float) -> None:
    """`POST /_local/clock` moves the parent's clock: each invocation brings the offset, set before the handler."""
    os.environ["CHATKEEP_CLOCK_OFFSET_SECONDS"] = str(seconds)  # for a chatkeep.clock imported later
    clock = sys.modules.get("chatkeep.clock")
    if clock is not None:
        clock.set_offset(seconds)


def _max_memory_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: kilobytes


def _invoke(handler: Callable[[dict[str, Any], Any], Any], config: FunctionConfig,
            message: dict[str, Any]) -> dict[str, Any]:
    request_id = message["request_id"]
    _set_clock_offset(float(message.get("clock_offset") or 0))
    context = LambdaContext(config, request_id)
    started = time.perf_counter()
    try:
        result = handler(message["event"], context)
        try:
            answer: dict[str, Any] = {"type": "result", "payload": json.dumps(result)}
        except (TypeError, ValueError) as exc:
            answer = {"type": "error", "error": marshal_error(exc, request_id)}
    except Exception as exc:  # SystemExit and the like end the environment, as in Lambda
        answer = {"type": "error", "error": lambda_error(exc, request_id)}
        log_error(answer["error"])
    sys.stdout.flush()
    return {**answer, "duration_ms": (time.perf_counter() - started) * 1000, "max_memory_mb": _max_memory_mb()}


def serve(sock: socket.socket) -> None:
    config = FunctionConfig(recv_frame(sock))
    try:
        handler = load_handler(config)
    except Exception as exc:
        error = init_error(exc, config)
        log_error(error)
        send_frame(sock, {"type": "init_error", "error": error, "max_memory_mb": _max_memory_mb()})
        return
    send_frame(sock, {"type": "ready", "max_memory_mb": _max_memory_mb()})
    while True:
        try:
            message = recv_frame(sock)
        except (EOFError, OSError):
            return  # the parent is gone or done with this environment
        send_frame(sock, _invoke(handler, config, message))


def main(argv: list[str]) -> None:
    sock = socket.socket(fileno=int(argv[1]))
    try:
        serve(sock)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv)


__all__ = ["FunctionConfig", "HandlerNotFound", "LambdaContext", "lambda_error", "load_handler", "module_name",
           "recv_frame", "send_frame"]
