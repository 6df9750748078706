"""`chatkeep invoke FUNCTION -e EVENT.json [-e ...]`: what `sam local invoke` does, without Docker. One function of
template.yaml runs on each event in turn, in the world `chatkeep dev` gives it (the same environment, tables,
queues and model stand-in: LocalRuntime.start_for_invoke), against an embedded DynamoDB started for the call or
`--endpoint-url`. The handler's result, or the error document Lambda would return, comes back per event.
The events run one after the other in one execution environment (chatkeep_local.environments), as
`sam local invoke` runs them in its container: the first is a cold start, the Timeout applies.

`--env-vars` takes SAM's env.json: `{"Parameters": {VAR: value}, "<LogicalId>": {VAR: value}}`, "Parameters" for
every function, the function's own entries over them, and (as SAM does) only variables the function declares."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatkeep_local import template as tpl
from chatkeep_local.environments import InvocationError

log = logging.getLogger("chatkeep_local.invoke")
# Set by the runtime for every function (where DynamoDB is, the dummy credentials): a file cannot move them.
RUNTIME_OWNED = frozenset({"DYNAMODB_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                           "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})


class InvokeRefused(Exception):
    """Nothing was run: the message says why, in one line."""


@dataclass
class InvokeOptions:
    function: str
    events: list[str]  # paths; "-" reads one event from stdin
    template: str = "template.yaml"
    env_vars: str | None = None
    endpoint_url: str | None = None
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    metrics: bool = False


@dataclass
class Outcome:
    event: str
    result: Any  # the handler's result, or Lambda's error document when `failed`
    failed: bool
    request_id: str


def env_vars_for(document: Any, function: str, declared: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """SAM's env.json for one function -> (variables to set, warnings about what is not used)."""
    if not isinstance(document, dict) or not all(isinstance(v, dict) for v in document.values()):
        raise InvokeRefused('--env-vars: expected {"Parameters": {VAR: value}, "<FunctionLogicalId>": {...}}')
    wanted = {**document.get("Parameters", {}), **document.get(function, {})}
    values: dict[str, str] = {}
    warnings = []
    for name, value in wanted.items():
        if name in RUNTIME_OWNED:
            hint = " (use --endpoint-url)" if name == "DYNAMODB_ENDPOINT_URL" else ""
            warnings.append(f"{name} is set by chatkeep invoke itself; the --env-vars value is not used{hint}")
        elif name not in declared:
            warnings.append(f"{name} is not an environment variable {function} declares in the template: "
                            "not set (sam local invoke ignores it too)")
        else:
            values[name] = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return values, warnings


def _read_event(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvokeRefused(f"{path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvokeRefused(f"{path}: not JSON ({exc})") from None


def _check(options: InvokeOptions) -> tuple[dict[str, Any], tpl.FunctionSpec]:
    if not Path(options.template).is_file():
        raise InvokeRefused(f"{options.template} not found (run it from the repository root, or --template)")
    template = tpl.load_template(options.template)
    functions = tpl.functions(template, options.parameter_overrides)
    spec = functions.get(options.function)
    if spec is None:
        raise InvokeRefused(f"no function {options.function} in {options.template} "
                            f"(its functions: {', '.join(sorted(functions)) or 'none'})")
    if not spec.module_file.is_file():
        raise InvokeRefused(f"{options.function}: its handler file {spec.module_file} does not exist")
    return template, spec


def invoke_events(options: InvokeOptions, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run options.function once per event, in order; InvokeRefused before anything starts when it cannot."""
    from chatkeep_local.server import DevOptions, LocalRuntime

    template, spec = _check(options)
    events = [(path, _read_event(path)) for path in options.events]
    env: dict[str, str] = {}
    if options.env_vars:
        env, warnings = env_vars_for(_read_event(options.env_vars), options.function, spec.environment)
        for warning in warnings:
            print(f"chatkeep invoke: {warning}", file=sys.stderr)
    runtime = LocalRuntime(DevOptions(
        host="127.0.0.1", port=0, endpoint_url=options.endpoint_url, template=options.template,
        parameter_overrides=dict(options.parameter_overrides), env_overrides=env, no_stream=True,
        print_banner=False, metrics=options.metrics))
    outcomes = []
    try:
        runtime.start_for_invoke()
        _create_renamed_tables(runtime, spec, env)
        invoker = runtime.invokers[options.function]
        logging.getLogger("chatkeep_local.lambda").setLevel(logging.INFO)  # START / END / REPORT, as sam prints
        for path, event in events:
            outcome = _invoke_one(invoker, path, event)
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    finally:
        runtime.shutdown()
    return outcomes


def _create_renamed_tables(runtime: Any, spec: tpl.FunctionSpec, env: Mapping[str, str]) -> None:
    """An env.json may name tables otherwise (a deployed stack's names): create those too, from the template."""
    renamed = {spec.environment[name]: value for name, value in env.items()
               if spec.environment.get(name) in runtime.table_specs and value and value != spec.environment[name]}
    if renamed:
        tpl.create_tables(runtime.ddb, runtime.template, names=renamed, overrides=runtime.parameter_overrides)
        log.info("tables also created as %s", ", ".join(f"{lid}={name}" for lid, name in renamed.items()))


def _invoke_one(invoker: Any, path: str, event: Any) -> Outcome:
    """One event in the function's environment; its START / END / REPORT lines go to stderr (the runtime's log)."""
    request_id = str(uuid.uuid4())
    log.info("%s: event %s", invoker.spec.logical_id, path)
    try:
        return Outcome(path, invoker.invoke(event, request_id), False, request_id)
    except InvocationError as exc:  # the environment printed the handler's [ERROR] line, as Lambda's runtime does
        return Outcome(path, exc.error, True, request_id)
    finally:
        sys.stdout.flush()


__all__ = ["InvokeOptions", "InvokeRefused", "Outcome", "env_vars_for", "invoke_events"]
