"""The caller, from the claims API Gateway's JWT authorizer verified (requestContext.authorizer.jwt.claims)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from chatkeep.errors import Forbidden, Unauthenticated
from chatkeep.settings import Settings, get_settings

# No '#': it separates the parts of our keys, so it must never come from a token. Matched in full (fullmatch):
# `$` alone lets a trailing newline through ("alice\n" would be another principal than "alice").
_SAFE = re.compile(r"[A-Za-z0-9_.:@|+=\-]{1,128}")


def usable_id(value: str) -> bool:
    """Whether `value` can be a `sub` or a workspace id (and so an owner of a container)."""
    return bool(_SAFE.fullmatch(value))


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    workspace_id: str
    name: str | None
    scopes: frozenset[str]
    is_service: bool

    @property
    def owner_tag(self) -> str:
        """What a container claimed by this caller records as its owner."""
        return "*" if self.is_service else self.sub


def _scopes(raw: Any, jwt_scopes: tuple[str, ...] | None) -> frozenset[str]:
    """The token's scopes: the `scope` claim is scope tokens separated by spaces (RFC 6749 section 3.3), each
    compared exactly. Nothing else separates them (no commas, tabs or brackets): `"[chatkeep/service]"` or
    `"openid,chatkeep/service"` is one scope that is not the service scope. (An IdP that issues scopes as a JSON
    array reaches us as API Gateway's text `[a b]`, indistinguishable from such a string: docs/architecture.md,
    "Identity and tenancy".) `jwt_scopes`: the list API Gateway parsed itself for routes with authorization
    scopes."""
    if isinstance(raw, (list, tuple)):
        items = [str(s) for s in raw]
    else:
        items = [s for s in str(raw).split(" ") if s]
    return frozenset(items) | frozenset(jwt_scopes or ())


def principal_from_event(event: dict[str, Any], settings: Settings | None = None) -> Principal:
    context = event.get("requestContext") or {}
    jwt = (context.get("authorizer") or {}).get("jwt") or {}
    # Payload 2.0 header names arrive lowercased (API Gateway, and the local runtime likewise).
    return principal_from_claims(jwt.get("claims") or {}, settings, jwt_scopes=jwt.get("scopes"),
                                 requested_workspace=(event.get("headers") or {}).get("x-workspace-id"))


def principal_from_claims(claims: dict[str, Any], settings: Settings | None = None, *,
                          jwt_scopes: Any = None, requested_workspace: Any = None) -> Principal:
    """The caller of a verified token's claims (as API Gateway renders them, or as the token holds them: a WebSocket
    connection_init's token is verified by chatkeep.realtime.tokens). `requested_workspace`: the X-Workspace-Id the
    caller named, which must be the token's."""
    settings = settings or get_settings()
    if not claims:
        raise Unauthenticated("missing or invalid bearer token")
    scope = claims.get("scope") or claims.get("scp") or ""
    identity = (
        claims.get("sub"),
        claims.get(settings.workspace_claim),
        tuple(scope) if isinstance(scope, list) else scope,  # a cache key: lists are not hashable
        tuple(jwt_scopes) if jwt_scopes else None,
        claims.get("given_name") or claims.get("name"),
        settings.workspace_claim,
        settings.service_scope,
    )
    try:
        principal = _principal(*identity)
    except TypeError:  # a claim of a type that cannot be a cache key (a JSON object): checked uncached
        principal = _principal.__wrapped__(*identity)
    if requested_workspace is not None and requested_workspace != principal.workspace_id:
        raise Forbidden("X-Workspace-Id does not match the token's workspace")
    return principal


@functools.lru_cache(maxsize=1024, typed=True)  # typed: claims 1 and 1.0 are equal keys, not one caller
def _principal(sub: Any, workspace: Any, scope: Any, jwt_scopes: tuple[str, ...] | None, name: Any,
               workspace_claim: str, service_scope: str) -> Principal:
    """The caller for one set of claims. Cached: a warm container serves the same callers again and again,
    and checking and building one is a tenth of a warm GET's CPU. Refusals raise, so they are never cached."""
    sub, workspace = str(sub or ""), str(workspace or "")
    if not usable_id(sub):
        raise Unauthenticated("token has no usable 'sub' claim")
    if not usable_id(workspace):
        raise Unauthenticated(f"token has no usable '{workspace_claim}' claim")
    scopes = _scopes(scope, jwt_scopes)
    return Principal(
        sub=sub,
        workspace_id=workspace,
        name=str(name) if name else None,
        scopes=scopes,
        is_service=service_scope in scopes,
    )
