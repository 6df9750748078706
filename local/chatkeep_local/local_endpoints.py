"""`chatkeep dev`'s own endpoints under `/_local/` (never deployed): health, the dev JWKS, the clock, the stream's
DLQ and drain, the queues and their drain, a TTL sweep, the explorer's assets. See docs/local-runtime.md."""

from __future__ import annotations

import json
import time
from typing import Any

from chatkeep_local import explorer, jwt_auth, websocket_dev
from chatkeep_local.environments import EnvironmentPool

JWKS_PATH = "/_local/jwks.json"


def serve(runtime: Any, method: str, path: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    def ok(payload: Any, status: int = 200) -> tuple[int, list[tuple[str, str]], bytes]:
        return status, [("content-type", "application/json")], json.dumps(payload, default=str).encode()

    if path.startswith(explorer.ASSET_PREFIX) and method in ("GET", "HEAD"):
        return explorer.asset(path) or ok({"message": "Not Found"}, 404)

    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return ok({"message": "body must be JSON"}, 400)
    if path == "/_local/health" and method == "GET":
        moto = runtime.moto.status() if runtime.moto is not None else None
        moto_down = moto is not None and not moto["alive"]
        return ok(
            {
                "status": "moto process exited" if moto_down else "ok",
                "dynamodb": runtime.endpoint_url,
                "moto": moto,
                "routes": [r.route_key for r in runtime.routes],
                "functions": {lid: inv.exists for lid, inv in runtime.invokers.items()},
                "environments": {lid: inv.status() for lid, inv in runtime.invokers.items()
                                 if isinstance(inv, EnvironmentPool)},
                "stream": _stream_status(runtime),
                "model": runtime.model_endpoint,
                "queues": {"error": "the moto process exited"} if moto_down else _queues_status(runtime),
                "websocket": websocket_dev.status(runtime.websocket),
                "clock_offset": runtime.clock.offset() if runtime.clock else 0,
            },
            503 if moto_down else 200,
        )
    if path == JWKS_PATH and method == "GET":
        return ok(jwt_auth.dev_jwks())
    if path == "/_local/clock" and method == "POST":
        if runtime.clock is None:
            return ok({"message": "the chatkeep package is not importable"}, 503)
        if "offset_seconds" in data:
            runtime.clock.set_offset(float(data["offset_seconds"]))
            offset = runtime.clock.offset()
        else:
            offset = runtime.clock.advance(float(data.get("advance_seconds", 0)))
        return ok({"offset": offset, "now": runtime.clock.now()})
    if path == "/_local/clock" and method == "GET":
        if runtime.clock is None:
            return ok({"offset": 0, "now": time.time()})
        return ok({"offset": runtime.clock.offset(), "now": runtime.clock.now()})
    if path == "/_local/dlq" and method == "GET":
        return ok({"path": str(runtime.dlq.path) if runtime.dlq else None,
                   "items": runtime.dlq.items if runtime.dlq else []})
    if path == "/_local/stream/drain" and method == "POST":
        if runtime.poller is None:
            return ok({"drained": True, "enabled": False})
        timeout = float(data.get("timeout", 30))
        result = runtime.poller.drain(timeout=timeout)
        return ok({"enabled": True, **result}, 200 if result["drained"] else 504)
    if path == "/_local/queues" and method == "GET":
        return ok(runtime.queues.status())
    if path == "/_local/queues/drain" and method == "POST":
        result = runtime.queues.drain(timeout=float(data.get("timeout", 30)))
        return ok(result, 200 if result["drained"] else 504)
    if path == "/_local/ttl/sweep" and method == "POST":
        if runtime.sweeper is None:
            return ok({"deleted": 0, "enabled": False})
        return ok({"deleted": runtime.sweeper.sweep_once(), "enabled": True})
    return ok({"message": "Not Found"}, 404)

def _queues_status(runtime: Any) -> dict[str, Any]:
    try:  # the queues' depths come from SQS: health answers even when the moto process is gone
        return runtime.queues.status()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}

def _stream_status(runtime: Any) -> dict[str, Any]:
    if runtime.poller is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "alive": runtime.poller.is_alive(),
        "table": runtime.poller.table_name,
        "function": runtime.poller.source.function,
        "error": runtime.poller.error,
        "last_error": runtime.poller.last_error,
        **runtime.poller.counters(),
    }


__all__ = ["JWKS_PATH", "serve"]
