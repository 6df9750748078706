"""The caller, from the claims API Gateway's JWT authorizer verified (requestContext.authorizer.jwt.claims)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chatkeep.errors import Forbidden, Unauthenticated
from chatkeep.settings import Settings, get_settings

# No '#': it separates the parts of our keys, so it must never come from a token.
_SAFE = re.compile(r"^[A-Za-z0-9_.:@|+=\-]{1,128}$")


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


def _scopes(claims: dict[str, Any], jwt_scopes: list[str] | None) -> frozenset[str]:
    raw = claims.get("scope") or claims.get("scp") or ""
    if isinstance(raw, list):
        items = [str(s) for s in raw]
    else:
        # API Gateway renders list claims as "[a b]"; scope is normally space-separated.
        items = str(raw).strip("[]").replace(",", " ").split()
    return frozenset(items) | frozenset(jwt_scopes or [])


def principal_from_event(event: dict[str, Any], settings: Settings | None = None) -> Principal:
    settings = settings or get_settings()
    context = event.get("requestContext") or {}
    jwt = (context.get("authorizer") or {}).get("jwt") or {}
    claims = jwt.get("claims") or {}
    if not claims:
        raise Unauthenticated("missing or invalid bearer token")
    sub = str(claims.get("sub") or "")
    workspace = str(claims.get(settings.workspace_claim) or "")
    if not _SAFE.match(sub):
        raise Unauthenticated("token has no usable 'sub' claim")
    if not _SAFE.match(workspace):
        raise Unauthenticated(f"token has no usable '{settings.workspace_claim}' claim")
    # Payload 2.0 header names arrive lowercased (API Gateway, and the local runtime likewise).
    requested = (event.get("headers") or {}).get("x-workspace-id")
    if requested is not None and requested != workspace:
        raise Forbidden("X-Workspace-Id does not match the token's workspace")
    scopes = _scopes(claims, jwt.get("scopes"))
    name = claims.get("given_name") or claims.get("name")
    return Principal(
        sub=sub,
        workspace_id=workspace,
        name=str(name) if name else None,
        scopes=scopes,
        is_service=settings.service_scope in scopes,
    )
