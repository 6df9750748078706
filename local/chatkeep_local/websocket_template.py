"""The WebSocket APIs a template declares: `AWS::ApiGatewayV2::Api` with `ProtocolType: WEBSOCKET`, its
`AWS::ApiGatewayV2::Route`s (`Target: integrations/<IntegrationId>`), the `AWS::ApiGatewayV2::Integration`s they
point at (`IntegrationUri`: a Lambda function's ARN, or the `arn:aws:apigateway:...:lambda:path/.../functions/<arn>/
invocations` form) and the `AWS::ApiGatewayV2::Stage`'s name.

SAM has no serverless resource for WebSocket APIs, so these are plain CloudFormation resources. Reading is tolerant:
a route whose target or function cannot be resolved is left out with a reason (`WebSocketApiSpec.skipped`), never an
error, so a half-written template still serves what it can.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatkeep_local.template import Resolver, UnresolvableError, functions, resources

DEFAULT_ROUTE_SELECTION = "$request.body.action"
DEFAULT_STAGE = "local"  # when the template declares no AWS::ApiGatewayV2::Stage for the API

_FUNCTION_IN_ARN = re.compile(r":function:([A-Za-z0-9_-]+)")


@dataclass
class WebSocketRouteSpec:
    route_key: str  # "$connect", "$disconnect", "$default" or a custom key matched by the selection expression
    function: str  # logical id of the AWS::Serverless::Function (or AWS::Lambda::Function) behind it
    route_response: bool = False  # RouteResponseSelectionExpression set: the integration's `body` goes back
    authorization_type: str = "NONE"


@dataclass
class WebSocketApiSpec:
    logical_id: str
    stage: str = DEFAULT_STAGE
    route_selection_expression: str = DEFAULT_ROUTE_SELECTION
    routes: dict[str, WebSocketRouteSpec] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # Route logical id -> why it is not served


def _resolved(resolver: Resolver, value: Any) -> Any:
    try:
        return resolver.resolve(value)
    except (UnresolvableError, KeyError, IndexError, TypeError, ValueError):
        return None


def _function_of_uri(uri: Any, function_ids: Mapping[str, str]) -> str | None:
    """The logical id of the function an IntegrationUri invokes. `function_ids` maps every name a function can
    appear under in an ARN (its logical id, its FunctionName) to its logical id."""
    if not isinstance(uri, str):
        return None
    match = _FUNCTION_IN_ARN.search(uri)
    if match is None:
        return function_ids.get(uri)  # a bare function name
    return function_ids.get(match.group(1))


def websocket_apis(
    template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, WebSocketApiSpec]:
    """Every WebSocket API of the template, by logical id, with the routes the local emulator can serve."""
    resolver = Resolver(template, overrides)
    apis: dict[str, WebSocketApiSpec] = {}
    for lid, res in resources(template, "AWS::ApiGatewayV2::Api").items():
        props = res.get("Properties") or {}
        if str(_resolved(resolver, props.get("ProtocolType"))).upper() != "WEBSOCKET":
            continue
        expression = _resolved(resolver, props.get("RouteSelectionExpression")) or DEFAULT_ROUTE_SELECTION
        apis[lid] = WebSocketApiSpec(lid, route_selection_expression=str(expression))
    if not apis:
        return apis

    def api_of(props: Mapping[str, Any]) -> WebSocketApiSpec | None:
        return apis.get(str(_resolved(resolver, props.get("ApiId"))))

    for res in resources(template, "AWS::ApiGatewayV2::Stage").values():
        props = res.get("Properties") or {}
        api = api_of(props)
        stage = _resolved(resolver, props.get("StageName"))
        if api is not None and stage and api.stage == DEFAULT_STAGE:
            api.stage = str(stage)

    function_ids: dict[str, str] = {}
    for fid, spec in functions(template, overrides).items():
        function_ids[fid] = fid
        if spec.function_name:
            function_ids[spec.function_name] = fid
    for fid in resources(template, "AWS::Lambda::Function"):
        function_ids.setdefault(fid, fid)
    integrations = {
        iid: _function_of_uri(_resolved(resolver, (res.get("Properties") or {}).get("IntegrationUri")), function_ids)
        for iid, res in resources(template, "AWS::ApiGatewayV2::Integration").items()
    }

    for rid, res in resources(template, "AWS::ApiGatewayV2::Route").items():
        props = res.get("Properties") or {}
        api = api_of(props)
        if api is None:
            continue
        route_key = _resolved(resolver, props.get("RouteKey"))
        target = _resolved(resolver, props.get("Target"))
        if not route_key:
            api.skipped[rid] = "no RouteKey"
            continue
        if not isinstance(target, str) or not target.startswith("integrations/"):
            api.skipped[rid] = f"Target {target!r} is not integrations/<IntegrationId>"
            continue
        integration = target.split("/", 1)[1]
        if integration not in integrations:
            api.skipped[rid] = f"Target names {integration}, which is not an AWS::ApiGatewayV2::Integration"
            continue
        function = integrations[integration]
        if function is None:
            api.skipped[rid] = f"the IntegrationUri of {integration} names no function of the template"
            continue
        api.routes[str(route_key)] = WebSocketRouteSpec(
            route_key=str(route_key),
            function=function,
            route_response=bool(_resolved(resolver, props.get("RouteResponseSelectionExpression"))),
            authorization_type=str(_resolved(resolver, props.get("AuthorizationType")) or "NONE"),
        )
    return apis


__all__ = ["DEFAULT_ROUTE_SELECTION", "DEFAULT_STAGE", "WebSocketApiSpec", "WebSocketRouteSpec", "websocket_apis"]
