"""`chatkeep dev`'s hook into the WebSocket API emulation: when template.yaml declares a WebSocket API
(`AWS::ApiGatewayV2::Api`, `ProtocolType: WEBSOCKET`), serve it on a second port with its routes into the same
function invokers as the HTTP API, and tell the functions where the `@connections` endpoint is.

In AWS the functions read `WEBSOCKET_MANAGEMENT_ENDPOINT` = `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`
(declared in the template); locally it is replaced by the emulator's `http://127.0.0.1:PORT/{stage}`, unless
`chatkeep dev --env WEBSOCKET_MANAGEMENT_ENDPOINT=...` sets it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from chatkeep_local.template import api_id_for
from chatkeep_local.websocket_api import Invoker, WebSocketApi
from chatkeep_local.websocket_template import websocket_apis

log = logging.getLogger("chatkeep_local")

MANAGEMENT_ENDPOINT_ENV = "WEBSOCKET_MANAGEMENT_ENDPOINT"


def from_template(
    template: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    invokers: Mapping[str, Invoker],
    **options: Any,
) -> WebSocketApi | None:
    """The (not yet started) emulator of the template's WebSocket API, its routes into `invokers` (by function
    logical id); None when the template declares none. `options` go to WebSocketApi (host, port, clock, ...)."""
    apis = websocket_apis(template, overrides)
    if not apis:
        return None
    spec = next(iter(apis.values()))
    if len(apis) > 1:
        log.warning("websocket: serving %s only; %s not served locally", spec.logical_id, ", ".join(list(apis)[1:]))
    for route_id, why in spec.skipped.items():
        log.warning("websocket: route %s not served: %s", route_id, why)
    routes: dict[str, Invoker] = {}
    for key, route in spec.routes.items():
        if route.function not in invokers:
            log.warning("websocket: route %s names %s, which has no invoker", key, route.function)
            continue
        if route.authorization_type.upper() != "NONE":
            log.warning("websocket: route %s has AuthorizationType %s, not emulated locally (treated as NONE)",
                        key, route.authorization_type)
        routes[key] = invokers[route.function]
    return WebSocketApi(
        routes,
        stage=spec.stage,
        api_id=api_id_for(spec.logical_id),
        route_selection_expression=spec.route_selection_expression,
        route_responses=[key for key, route in spec.routes.items() if route.route_response],
        **options,
    )


def start_for_dev(
    template: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    invokers: Mapping[str, Invoker],
    *,
    env_overrides: Mapping[str, str] | None = None,
    **options: Any,
) -> WebSocketApi | None:
    """Start the emulator if the template has a WebSocket API, and point the functions' environment at it."""
    api = from_template(template, overrides, invokers, **options)
    if api is None:
        return None
    api.start()
    if MANAGEMENT_ENDPOINT_ENV not in (env_overrides or {}):
        os.environ[MANAGEMENT_ENDPOINT_ENV] = api.management_endpoint
    log.info("WebSocket API: %s (routes %s; @connections %s)", api.url, ", ".join(api.routes) or "none",
             api.management_endpoint)
    return api


def status(api: WebSocketApi | None) -> dict[str, Any]:
    """The emulator's part of /_local/health."""
    if api is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "url": api.url,
        "management_endpoint": api.management_endpoint,
        "routes": sorted(api.routes),
        "connections": len(api.connection_ids()),
    }


def banner_line(api: WebSocketApi | None) -> str | None:
    if api is None:
        return None
    return f"  websocket: {api.url}  (functions push via ${MANAGEMENT_ENDPOINT_ENV} = {api.management_endpoint})"


__all__ = ["MANAGEMENT_ENDPOINT_ENV", "banner_line", "from_template", "start_for_dev", "status"]
