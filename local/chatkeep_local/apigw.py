"""API Gateway HTTP API emulation: route matching, the payload-2.0 event, the response mapping, CORS.

References: "Working with AWS Lambda proxy integrations for HTTP APIs" (payload format 2.0: request
and response), "Working with routes for HTTP APIs" (path variables, greedy `{proxy+}`, `$default`,
most specific match wins), "Configuring CORS for an HTTP API".
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from chatkeep_local.template import ACCOUNT_ID, Route

PAYLOAD_LIMIT_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API request payload limit
INTEGRATION_TIMEOUT_S = 30.0  # HTTP API maximum integration timeout

NOT_FOUND = (404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
INTERNAL_ERROR = (500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
# The integration timeout passed (the function may still be running).
SERVICE_UNAVAILABLE = (503, {"content-type": "application/json"}, b'{"message":"Service Unavailable"}')
TOO_LARGE = (413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')


# ------------------------------------------------------------------------------------------- routing


@dataclass
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


def _segments(path: str) -> list[str]:
    return path.split("/")[1:] if path.startswith("/") else path.split("/")


def _specificity(route: Route) -> tuple[int, int, int, int]:
    """Sort key: most specific first (API Gateway: exact paths before variables, greedy last,
    a specific method before ANY, $default only when nothing else matches)."""
    if route.path == "$default":
        return (1, 0, 0, 1)
    segs = _segments(route.path)
    greedy = 1 if segs and segs[-1].endswith("+}") else 0
    literal = sum(1 for s in segs if not s.startswith("{"))
    return (0, greedy, -literal, 1 if route.method == "ANY" else 0)


class Router:
    def __init__(self, routes: Iterable[Route]):
        self.routes = sorted(routes, key=_specificity)

    def match(self, method: str, path: str) -> RouteMatch | None:
        method = method.upper()
        for route in self.routes:
            if route.method not in ("ANY", method):
                continue
            if route.path == "$default":
                return RouteMatch(route, {})
            params = match_path(route.path, path)
            if params is not None:
                return RouteMatch(route, params)
        return None

    def methods_for(self, path: str) -> set[str]:
        return {r.method for r in self.routes if r.path == "$default" or match_path(r.path, path) is not None}


def match_path(template_path: str, path: str) -> dict[str, str] | None:
    """Path parameters if `path` matches `template_path` (`{name}` = one segment, `{name+}` = the rest)."""
    tsegs, psegs = _segments(template_path), _segments(path)
    params: dict[str, str] = {}
    for i, t in enumerate(tsegs):
        if t.startswith("{") and t.endswith("+}"):
            rest = psegs[i:]
            if not rest or rest == [""]:
                return None
            params[t[1:-2]] = unquote("/".join(rest))
            return params
        if i >= len(psegs):
            return None
        p = psegs[i]
        if t.startswith("{") and t.endswith("}"):
            if p == "":
                return None
            params[t[1:-1]] = unquote(p)
        elif t != p:
            return None
    if len(psegs) != len(tsegs):
        return None
    return params


# ------------------------------------------------------------------------------------------- request

_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|xml|javascript|graphql|x-ndjson)|application/.*\+(json|xml))$", re.I
)


def is_text_content(content_type: str | None) -> bool:
    if not content_type:
        return False
    return bool(_TEXT_TYPES.match(content_type.split(";")[0].strip()))


def request_id() -> str:
    """Shaped like API Gateway's (e.g. `JKJaXmPLvHcESHA=`)."""
    return base64.b64encode(os.urandom(11)).decode()


def trace_id(now: float) -> str:
    return f"Root=1-{int(now):08x}-{os.urandom(12).hex()}"


def _clf_time(now: float) -> str:
    return datetime.fromtimestamp(now, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def build_event(
    *,
    route: Route,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    path_parameters: Mapping[str, str] | None = None,
    authorizer: Mapping[str, Any] | None = None,
    api_id: str = "localapi01",
    domain_name: str | None = None,
    request_id_value: str | None = None,
    now: float | None = None,
    protocol: str = "HTTP/1.1",
) -> dict[str, Any]:
    """The payload-format-2.0 event API Gateway sends to a Lambda proxy integration.

    Header names lowercased, repeated headers comma-joined, `cookie` headers moved to `cookies`;
    queryStringParameters comma-joined; body base64-encoded unless its content type is text;
    `authorizer` present only on routes with an authorizer; no `stageVariables` (none declared)."""
    now = time.time() if now is None else now
    rid = request_id_value or request_id()
    hdrs: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        hdrs[lname] = f"{hdrs[lname]},{value}" if lname in hdrs else value
    host = hdrs.get("host", "localhost")
    port = host.rsplit(":", 1)[1] if ":" in host else "80"
    hdrs.setdefault("x-forwarded-for", source_ip)
    hdrs.setdefault("x-forwarded-port", port)
    hdrs.setdefault("x-forwarded-proto", "http")
    hdrs.setdefault("x-amzn-trace-id", trace_id(now))
    if body:
        hdrs.setdefault("content-length", str(len(body)))
    domain = domain_name or host.rsplit(":", 1)[0]

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = hdrs
    if raw_query:
        qs: dict[str, str] = {}
        for k, v in parse_qsl(raw_query, keep_blank_values=True):
            qs[k] = f"{qs[k]},{v}" if k in qs else v
        event["queryStringParameters"] = qs
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": api_id,
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    context.update(
        {
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method.upper(),
                "path": raw_path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": hdrs.get("user-agent", ""),
            },
            "requestId": rid,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": _clf_time(now),
            "timeEpoch": int(now * 1000),
        }
    )
    event["requestContext"] = context
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        if is_text_content(hdrs.get("content-type")):
            try:
                event["body"] = body.decode("utf-8")
                event["isBase64Encoded"] = False
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


# ------------------------------------------------------------------------------------------ response


class InvalidResponse(ValueError):
    """The function's response is not a valid payload-2.0 response: API Gateway answers 500."""


def http_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Map a payload-2.0 Lambda response to (status, headers, body) as API Gateway does.

    A dict with `statusCode`: its statusCode, headers, cookies (one Set-Cookie each), body (decoded
    when isBase64Encoded). Anything else that is valid JSON: 200, application/json, the JSON itself."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return 200, [("content-type", "application/json")], json.dumps(result).encode()
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise InvalidResponse(f"statusCode {status!r} is not an HTTP status")
    headers: list[tuple[str, str]] = []
    raw_headers = result.get("headers")
    if raw_headers is None:
        raw_headers = {}
    if not isinstance(raw_headers, dict):
        raise InvalidResponse("headers must be an object")
    for k, v in raw_headers.items():
        if isinstance(v, list | dict):
            raise InvalidResponse(f"header {k!r} must be a string")
        headers.append((str(k).lower(), "true" if v is True else "false" if v is False else str(v)))
    for k, values in (result.get("multiValueHeaders") or {}).items():  # not part of 2.0; tolerated
        for v in values:
            headers.append((str(k).lower(), str(v)))
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise InvalidResponse("cookies must be a list")
    headers.extend(("set-cookie", str(c)) for c in cookies)
    body = result.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        if result.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=True)
            except ValueError as exc:
                raise InvalidResponse("body is not valid base64") from exc
        else:
            data = body.encode("utf-8")
    else:
        raise InvalidResponse(f"body must be a string, not {type(body).__name__}")
    return status, headers, data


# ----------------------------------------------------------------------------------------------- CORS


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


class Cors:
    """HTTP API CORS: API Gateway answers preflight requests itself and adds the CORS headers to
    integration responses (replacing the integration's own)."""

    def __init__(self, config: Mapping[str, Any] | None):
        config = config or {}
        self.enabled = bool(config)
        self.origins = _as_list(config.get("AllowOrigins"))
        self.methods = [m.upper() for m in _as_list(config.get("AllowMethods"))]
        self.headers = [h.lower() for h in _as_list(config.get("AllowHeaders"))]
        self.expose = _as_list(config.get("ExposeHeaders"))
        self.max_age = config.get("MaxAge")
        self.credentials = str(config.get("AllowCredentials", False)).lower() == "true"

    def allow_origin(self, origin: str | None) -> str | None:
        if not self.enabled or not origin:
            return None
        if "*" in self.origins:
            return "*" if not self.credentials else origin
        return origin if origin in self.origins else None

    def is_preflight(self, method: str, headers: Mapping[str, str]) -> bool:
        return (
            self.enabled
            and method.upper() == "OPTIONS"
            and "origin" in headers
            and "access-control-request-method" in headers
        )

    def preflight(self, headers: Mapping[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        out: list[tuple[str, str]] = []
        origin = self.allow_origin(headers.get("origin"))
        req_method = headers.get("access-control-request-method", "").upper()
        method_ok = "*" in self.methods or req_method in self.methods
        if origin and method_ok:
            out.append(("access-control-allow-origin", origin))
            out.append(("access-control-allow-methods", ",".join(self.methods) or req_method))
            req_headers = headers.get("access-control-request-headers")
            if self.headers:
                if "*" in self.headers and req_headers:
                    out.append(("access-control-allow-headers", req_headers))
                else:
                    out.append(("access-control-allow-headers", ",".join(self.headers)))
            if self.max_age is not None:
                out.append(("access-control-max-age", str(self.max_age)))
            if self.credentials:
                out.append(("access-control-allow-credentials", "true"))
        return 204, out, b""

    def decorate(self, headers: list[tuple[str, str]], origin: str | None) -> list[tuple[str, str]]:
        allowed = self.allow_origin(origin)
        if not allowed:
            return headers
        kept = [(k, v) for k, v in headers if not k.startswith("access-control-")]
        kept.append(("access-control-allow-origin", allowed))
        if self.expose:
            kept.append(("access-control-expose-headers", ",".join(self.expose)))
        if self.credentials:
            kept.append(("access-control-allow-credentials", "true"))
        return kept
