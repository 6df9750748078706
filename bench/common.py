"""What every benchmark section shares: the environment, moto with the tables of template.yaml, payload-2.0
events, a botocore request counter, statistics and table printing."""

from __future__ import annotations

import logging
import math
import os
import statistics
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TEMPLATE = ROOT / "template.yaml"
TABLE_ENV = {"ChatTable": "CHAT_TABLE_NAME", "SearchIndexTable": "SEARCH_TABLE_NAME",
             "IdempotencyTable": "IDEMPOTENCY_TABLE_NAME", "ConnectionsTable": "CONNECTIONS_TABLE_NAME"}
BENCH_ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "chatkeep", "POWERTOOLS_METRICS_NAMESPACE": "Chatkeep",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "INFO",
}


def setup_environment() -> None:
    """sys.path as the Lambda runtime sees it (+ the local runtime for moto helpers); fake credentials."""
    for sub in ("layers/common", "local", "."):
        path = str(ROOT / sub)
        if path not in sys.path:
            sys.path.insert(0, path)
    for key, value in BENCH_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.pop("DYNAMODB_ENDPOINT_URL", None)


setup_environment()

# One harness for tests and benchmarks (events, context, request counter, cache reset).
from chatkeep_local.harness import (  # noqa: E402
    LambdaContext,
    RequestCounter,
    claims_for,
    http_event,
    reset_caches,
)

__all__ = ["LambdaContext", "RequestCounter", "claims_for", "http_event", "reset_caches"]


@contextmanager
def moto_tables() -> Iterator[Any]:
    """moto with every table of template.yaml, table names in the environment (as tests/conftest.py does)."""
    import boto3
    from chatkeep_local import moto_dynamodb
    from chatkeep_local.template import create_tables, load_template
    from moto import mock_aws

    saved = {var: os.environ.get(var) for var in TABLE_ENV.values()}
    moto_dynamodb.install()  # as the tests and the local runtime: DynamoDB's transaction semantics, no table copies
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for logical_id, name in create_tables(client, load_template(TEMPLATE)).items():
            if logical_id in TABLE_ENV:
                os.environ[TABLE_ENV[logical_id]] = name
        reset_caches()
        try:
            yield client
        finally:
            reset_caches()
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(title: str, headers: list[str], rows: list[list[Any]], note: str | None = None) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = [f"\n## {title}", ""]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    if note:
        lines += ["", note]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def _stream_handlers() -> list[logging.StreamHandler]:  # type: ignore[type-arg]
    return [h for name in ("chatkeep", "") for h in logging.getLogger(name).handlers
            if isinstance(h, logging.StreamHandler)]


@contextmanager
def quiet() -> Iterator[None]:
    """The handlers' JSON log lines and EMF flushes go to stdout: keep them out of the tables. A logger first built
    while this is on (Powertools binds sys.stdout when it builds its handler) is pointed back at the real stdout on
    the way out, so it never writes to, or flushes, the closed stand-in."""
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    saved = {}
    for handler in _stream_handlers():
        if getattr(handler.stream, "closed", False):  # left bound to an earlier stand-in: no flush of it
            handler.stream = sys.stdout
        saved[handler] = handler.setStream(devnull)
    try:
        with redirect_stdout(devnull), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for handler in _stream_handlers():
            if handler in saved:
                handler.setStream(saved[handler])
            elif handler.stream is devnull:
                handler.stream = sys.stdout
        devnull.close()

