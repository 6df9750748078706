"""`chatkeep dev` in a terminal: start the runtime (a port that cannot be used is one line, before anything
starts), print the banner, serve until Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import sys

from chatkeep_local import jwt_auth, websocket_dev
from chatkeep_local.moto_process import MotoProcessError
from chatkeep_local.server import DEV_TOKEN_TTL, DevOptions, LocalRuntime, PortUnavailable

log = logging.getLogger("chatkeep_local")


def banner(runtime: LocalRuntime) -> str:
    token = runtime.dev_token()
    url = runtime.url
    lines = [
        f"chatkeep local runtime: {url}",
        f"  routes: {len(runtime.routes)} from {runtime.template_path.name}; DynamoDB {runtime.endpoint_url}",
        f"  token (sub dev-user, workspace dev, valid {DEV_TOKEN_TTL // 86400} days; `chatkeep token` makes others,"
        f" valid {jwt_auth.DEFAULT_TTL // 3600} hour unless --ttl):",
        f"  {token}",
    ]
    if runtime.graphql_path:
        query = json.dumps({"query": "query { getTodoChatSessions(todoId: 1) { totalCount } }"})
        lines += [
            "  try:",
            f"  curl -s {url}{runtime.graphql_path} -H 'content-type: application/json' "
            f"-H 'authorization: Bearer {token}' -d '{query}'",
            f"  GraphQL explorer: open {url}{runtime.graphql_path} in a browser (introspection "
            + ("on)" if runtime.introspection else "off: --parameter EnableIntrospection=true turns it on)"),
        ]
    lines.append(f"  model: Bedrock stand-in at {runtime.model_endpoint}; {url}/_local/model/requests, /faults")
    if websocket := websocket_dev.banner_line(runtime.websocket):
        lines.append(websocket)
    metrics = "printed" if runtime.options.metrics else "off (--metrics prints them)"
    lines.append(f"  EMF metrics: {metrics}; dev endpoints: {url}/_local/health  (Ctrl-C to stop)")
    return "\n".join(lines)


def port_advice(exc: PortUnavailable) -> str:
    """One line: what is wrong and what to run instead (`make dev PORT=...` when started by make)."""
    if not exc.free:
        return f"chatkeep dev: {exc}; choose another port with {exc.option}"
    make = os.environ.get("MAKELEVEL")
    if exc.option == "--port":
        retry = f"make dev PORT={exc.free}" if make else f"chatkeep dev --port {exc.free}"
    else:
        retry = f'make dev DEV_ARGS="{exc.option} {exc.free}"' if make else f"chatkeep dev {exc.option} {exc.free}"
    return f"chatkeep dev: {exc} (another chatkeep dev?); port {exc.free} is free: {retry}"


def run_dev(options: DevOptions) -> int:
    runtime = LocalRuntime(options)
    try:
        runtime.start()
    except PortUnavailable as exc:
        print(port_advice(exc), file=sys.stderr)
        runtime.shutdown()
        return 1
    except MotoProcessError as exc:
        print(f"chatkeep dev: {exc}", file=sys.stderr)
        runtime.shutdown()
        return 1
    if options.print_banner:
        print(banner(runtime), flush=True)
    try:
        runtime.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        runtime.shutdown()
    return 0


__all__ = ["banner", "port_advice", "run_dev"]
