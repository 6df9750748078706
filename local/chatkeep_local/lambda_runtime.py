"""In-process Lambda: load a function's handler from its CodeUri by file path and call it with a
Lambda-like context. One module per function (`chatkeep_fn_<LogicalId>`), loaded once ("cold start").

Every function shares this process, so they share the layer's Powertools logger, whose keys
(`inject_lambda_context`: function_name, function_arn, ...) are process-wide: in Lambda one invocation owns the
process, here a stream batch and an API request run at once in two threads, and each would print the keys the
other appended last. Each invocation therefore runs in its own `contextvars` context where those keys are set as
Powertools' thread-safe keys, which a line's formatter prefers to the shared ones."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from chatkeep_local.lambda_worker import HandlerNotFound, LambdaContext, load_handler, module_name
from chatkeep_local.template import REGION, FunctionSpec

log = logging.getLogger("chatkeep_local.lambda")


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


class Invoker(Protocol):
    """What the runtime's callers (API routes, pollers, WebSocket routes) need of a function: FunctionInvoker here,
    or environments.EnvironmentPool."""

    spec: FunctionSpec
    enforces_timeout: bool

    @property
    def exists(self) -> bool: ...

    def invoke(self, event: Any, request_id: str | None = None) -> Any: ...


class FunctionInvoker:
    """Loads the handler on first use (thread-safe) and invokes it. `invoke` raises what the handler
    raises; callers turn it into the integration's error behaviour."""

    enforces_timeout = False  # a handler in this process cannot be stopped: callers check its time after it ends

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


__all__ = ["REGION", "FunctionInvoker", "HandlerNotFound", "Invoker", "LambdaContext", "load_handler", "module_name"]
