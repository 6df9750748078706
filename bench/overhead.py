"""Section 3: warm overhead per request. The function's own lambda_handler (Powertools logger and metrics
decorators included) with DynamoDB replaced by canned responses (recorded from moto for the same request,
replayed by a fake client through the `chatkeep.aws.dynamodb` factory), against, in the same run:
(a) ariadne `graphql_sync` of the same document on a bare schema (same SDL, resolvers returning the same
data; JSON in and out included), and (b) a bare Powertools `APIGatewayHttpResolver(enable_validation=True)`
route returning the same JSON through the same pydantic response model (see `_bare_rest`). CPU time
(time.process_time) per request, medians of interleaved rounds.

Like (a), which runs the same document against the same SDL, the REST goal's baseline declares the same
contract as our route (its parameters and body, so Powertools validates the same request); the same route
declaring no parameters (it never reads the query, header or body) is printed beside it as context."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import os
import re
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bench.common import ROOT, LambdaContext, median, moto_tables, print_table, quiet
from bench.ops import Scenario, World, scenarios

ROUNDS = 11
ITERATIONS = 100
COPY_ITERATIONS = 500  # the event copy each request starts with, subtracted from every side


def load_function(code_uri: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / code_uri / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Replay:
    """A DynamoDB client that answers each operation with the responses recorded for it, in turn. Its methods
    are built once, so the fake adds next to nothing to the handler's measured time."""

    def __init__(self, recorded: list[tuple[str, dict[str, Any]]]) -> None:
        from botocore import xform_name

        answers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for op, response in recorded:
            answers[xform_name(op)].append(response)
        for name, responses in answers.items():
            # Read-only for the repository (it builds new dicts); in turn when an operation repeats.
            def answer(_turns: Any = itertools.cycle(responses), **_kwargs: Any) -> dict[str, Any]:
                return next(_turns)

            setattr(self, name, answer)


def _bare_graphql(data: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
    from ariadne import MutationType, QueryType, graphql_sync, load_schema_from_path, make_executable_schema
    from chatkeep.graphql.server import SCHEMA_PATH

    sdl = load_schema_from_path(str(SCHEMA_PATH))
    query, mutation = QueryType(), MutationType()
    for field, value in data.items():
        bindable = query if f"  {field}(" in sdl.split("type Mutation", 1)[0] else mutation
        bindable.set_field(field, lambda *_a, _v=value, **_k: _v)
    schema = make_executable_schema(sdl, query, mutation)

    def run(event: dict[str, Any]) -> Any:
        body = json.loads(event["body"])
        ok, result = graphql_sync(schema, body)
        return {"statusCode": 200, "body": json.dumps(result)}

    return run


def _bare_rest(event: dict[str, Any], status: int, payload: Any, *,
               same_signature: bool = False) -> Callable[[dict[str, Any]], Any]:
    """A bare Powertools app: `APIGatewayHttpResolver(enable_validation=True)` with one route, declared with the
    same path template as ours, returning the same JSON through the same pydantic response model
    (`-> Response[Model]`, so Powertools validates and serialises the body with it, as it does for any validated
    route). Nothing else: no auth, no exception handlers, no Logger/Metrics decorators.

    `same_signature=True` (the goal's baseline): the parameters our route declares (path patterns, query,
    `Idempotency-Key` header, body model), so Powertools validates the same request as it does for us; the body
    is still a constant. `same_signature=False` (context): path parameters as plain `str`, nothing else."""
    import inspect

    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

    ours, model = _rest_route_model(event, status)
    app = APIGatewayHttpResolver(enable_validation=True)
    method = event["requestContext"]["http"]["method"]

    def route(**_params: Any) -> Any:
        return Response(status_code=status, content_type="application/json", body=payload)

    if same_signature:
        import typing

        hints = typing.get_type_hints(ours.func, include_extras=True)
        parameters = [p.replace(annotation=hints[p.name])
                      for p in inspect.signature(ours.func).parameters.values()]
    else:
        parameters = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str)
                      for name in re.findall(r"<(\w+)>", ours.path)]
    route.__signature__ = inspect.Signature(parameters, return_annotation=Response[model])  # type: ignore[attr-defined]
    app.route(ours.path, method)(route)
    return lambda e: app.resolve(e, LambdaContext())


def _rest_route_model(event: dict[str, Any], status: int) -> tuple[Any, Any]:
    """Our route that answers `event`, and the pydantic model it declares for `status`."""
    from chatkeep.rest.app import app

    method, path = event["requestContext"]["http"]["method"], event["rawPath"]
    for route in app._static_routes + app._dynamic_routes:
        if route.method == method and route.rule.match(path):
            return route, route.responses[status]["content"]["application/json"]["model"]
    raise LookupError(f"no route for {method} {path}")


def _cpu_per_call(fn: Callable[[], Any], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) * 1000 / n


def prepare(world: World, scenario: Scenario) -> dict[str, Any]:
    """Run the operation against moto once, recording DynamoDB's answers, the event and the reply."""
    recorded: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any = None, parsed: Any = None, **_: Any) -> None:
        clean = {k: v for k, v in (parsed or {}).items() if k != "ResponseMetadata"}
        recorded.append((model.name, copy.deepcopy(clean)))

    run = scenario.setup(world)
    world.client.meta.events.register("after-call.dynamodb.*", record)
    try:
        reply = run().check()
    finally:
        world.client.meta.events.unregister("after-call.dynamodb.*", record)
    return {"event": copy.deepcopy(world.last_event), "reply": reply, "recorded": recorded}


def run(rounds: int = ROUNDS, iterations: int = ITERATIONS) -> dict[str, Any]:
    cases = []
    with moto_tables(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with quiet():
            world = World()
            for scenario in scenarios():
                if scenario.guide and (scenario.api == "graphql" or _rest_ok()):
                    cases.append((scenario, prepare(world, scenario)))
        return _time(cases, rounds, iterations)


def _time(cases: list[tuple[Scenario, dict[str, Any]]], rounds: int, iterations: int) -> dict[str, Any]:
    from chatkeep import aws

    functions = {"graphql": load_function("functions/graphql_api", "bench_graphql_app")}
    if _rest_ok():
        functions["rest"] = load_function("functions/rest_api", "bench_rest_app")
    ctx = LambdaContext()
    results: dict[str, Any] = {}
    rows = []
    original = aws.dynamodb
    try:
        with quiet():
            for scenario, case in cases:
                fake = Replay(case["recorded"])
                aws.dynamodb = lambda fake=fake: fake
                handler = functions[scenario.api].lambda_handler
                event = case["event"]

                def ours(handler: Any = handler, event: dict[str, Any] = event) -> Any:
                    out = handler(copy.deepcopy(event), ctx)
                    if out["statusCode"] >= 400 or '"errors"' in (out.get("body") or "")[:20]:
                        raise AssertionError(f"{event['rawPath']}: {out}")
                    return out

                reply = case["reply"]
                baselines = ({"bare": _bare_graphql(reply.body["data"])} if scenario.api == "graphql" else
                             {"bare": _bare_rest(event, reply.status, reply.body, same_signature=True),
                              "no_parameters": _bare_rest(event, reply.status, reply.body)})
                runs = {"handler": ours} | {
                    name: (lambda fn=fn, event=event: fn(copy.deepcopy(event))) for name, fn in baselines.items()}

                # Over many copies whatever the round size: a slow moment here would skew every round.
                copy_cost = _cpu_per_call(lambda event=event: copy.deepcopy(event), max(iterations, COPY_ITERATIONS))
                warm = {name: fn() for name, fn in runs.items()}  # documents cached, routes compiled
                if os.environ.get("BENCH_DEBUG"):
                    print(scenario.name, {k: str(v)[:300] for k, v in warm.items()}, file=sys.stderr)
                samples: dict[str, list[float]] = {name: [] for name in runs}
                for _ in range(rounds):
                    for name, fn in runs.items():
                        samples[name].append(_cpu_per_call(fn, iterations) - copy_cost)
                m, b = median(samples["handler"]), median(samples["bare"])
                r = _median_ratio(samples["handler"], samples["bare"])
                entry = {"handler_cpu_ms": m, "bare_cpu_ms": b, "ratio": r,
                         "baseline": ("ariadne graphql_sync" if scenario.api == "graphql"
                                      else "Powertools route, same contract"),
                         "dynamodb_calls": len(case["recorded"])}
                context = "-", "-", "-"
                if "no_parameters" in samples:
                    s = median(samples["no_parameters"])
                    rs = _median_ratio(samples["handler"], samples["no_parameters"])
                    entry |= {"no_parameters_cpu_ms": s, "no_parameters_ratio": rs}
                    context = f"{s:.3f}", f"{rs:.2f}", "yes" if rs <= 1.3 else "NO"
                results[scenario.name] = entry
                rows.append([scenario.name, entry["baseline"], f"{m:.3f}", f"{b:.3f}", f"{r:.2f}",
                             "yes" if r <= 1.3 else "NO", *context])
    finally:
        aws.dynamodb = original
    note = (f"{rounds} interleaved rounds x {iterations} requests, median CPU ms per request; ratios are medians "
            "of the per-round ratios. The handler runs with its Powertools decorators (logger context; EMF flush "
            "when a route counted something) and DynamoDB answered by a replaying fake client (no botocore); "
            "the bare GraphQL baseline parses and validates each time (ariadne's "
            "graphql_sync), as an unmodified ariadne server does; the bare REST baseline is "
            "APIGatewayHttpResolver(enable_validation=True) with one route declaring our route's contract (path "
            "template and patterns, query, Idempotency-Key header, body model), so Powertools validates the same "
            "request, and returning the same JSON through the same pydantic response model (-> Response[Model]); "
            "no logic, no auth, no decorators. 'bare, no parameters' (context): that route with its path "
            "parameters as plain str and nothing else declared; it never reads the query, header or body.")
    results["table"] = print_table("Warm overhead per request (CPU ms, canned DynamoDB)",
                                   ["operation", "bare baseline", "handler", "bare", "ratio", "<= 1.3x",
                                    "bare, no parameters", "ratio to it", "<= 1.3x of it"], rows, note)
    return results


def _median_ratio(mine: list[float], base: list[float]) -> float:
    """Median of the per-round ratios: each round measures both back to back, so a slow spell of the shared
    machine weighs on both sides of a ratio instead of on one side's median."""
    return median([x / y for x, y in zip(mine, base, strict=True)])


def _rest_ok() -> bool:
    return (ROOT / "functions" / "rest_api" / "app.py").exists()


if __name__ == "__main__":
    import bench.common  # noqa: F401

    run(3, 50)
