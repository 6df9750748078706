"""In-process Lambda: load a function's handler from its CodeUri by file path and call it with a
Lambda-like context. One module per function (`chatkeep_fn_<LogicalId>`), loaded once ("cold start").

Every function shares this process, so they share the layer's Powertools logger, whose keys
(`inject_lambda_context`: function_name, function_arn, ...) are process-wide: in Lambda one invocation owns the
process, here a stream batch and an API request run at once in two threads, and each would print the keys the
other appended last. Each invocation therefore runs in its own `contextvars` context where those keys are set as
Powertools' thread-safe keys, which a line's formatter prefers to the shared ones."""

from __future__ import annotations

import contextvars
import importlib.util
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from chatkeep_local.template import REGION, FunctionSpec, function_arn

log = logging.getLogger("chatkeep_local.lambda")


class LambdaContext:
    """The attributes and method of the Python runtime's context object."""

    def __init__(self, spec: FunctionSpec, request_id: str | None = None):
        name = spec.function_name or spec.logical_id
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn(name)
        self.memory_limit_in_mb = spec.memory_size
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class HandlerNotFound(RuntimeError):
    pass


def module_name(logical_id: str) -> str:
    return f"chatkeep_fn_{logical_id}"


def load_handler(spec: FunctionSpec) -> Callable[[dict[str, Any], Any], Any]:
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


def _log_keys(context: LambdaContext, cold_start: bool) -> dict[str, Any]:
    """What Powertools' inject_lambda_context takes from the context (the event-derived correlation id is the
    handler's own choice of path, left to it)."""
    return {"cold_start": cold_start, "function_name": context.function_name,
            "function_memory_size": context.memory_limit_in_mb, "function_arn": context.invoked_function_arn,
            "function_request_id": context.aws_request_id}


def _call_with_own_log_keys(handler: Callable[[dict[str, Any], Any], Any], event: dict[str, Any],
                            context: LambdaContext, cold_start: bool) -> Any:
    try:
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
    except ImportError:  # a function without Powertools: nothing to keep apart
        return handler(event, context)
    LambdaPowertoolsFormatter().thread_safe_append_keys(**_log_keys(context, cold_start))
    return handler(event, context)


class FunctionInvoker:
    """Loads the handler on first use (thread-safe) and invokes it. `invoke` raises what the handler
    raises; callers turn it into the integration's error behaviour."""

    def __init__(self, spec: FunctionSpec):
        self.spec = spec
        self._handler: Callable[[dict[str, Any], Any], Any] | None = None
        self._lock = threading.Lock()
        self._invoked = False

    @property
    def exists(self) -> bool:
        return self.spec.module_file.is_file()

    def handler(self) -> Callable[[dict[str, Any], Any], Any]:
        if self._handler is None:
            with self._lock:
                if self._handler is None:
                    started = time.perf_counter()
                    self._handler = load_handler(self.spec)
                    log.info(
                        "%s: init %.0f ms (%s)",
                        self.spec.logical_id,
                        (time.perf_counter() - started) * 1000,
                        self.spec.module_file,
                    )
        return self._handler

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        handler = self.handler()
        cold_start, self._invoked = not self._invoked, True
        context = LambdaContext(self.spec, request_id)
        # A context of its own: the log keys set for this invocation end with it, in this thread only.
        return contextvars.copy_context().run(_call_with_own_log_keys, handler, event, context, cold_start)


__all__ = ["REGION", "FunctionInvoker", "HandlerNotFound", "LambdaContext", "load_handler", "module_name"]
