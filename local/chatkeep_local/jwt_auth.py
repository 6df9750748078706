"""Local JWT: HS256 tokens signed with a dev secret, verified the way the HTTP API JWT authorizer does.

API Gateway's JWT authorizer (https://docs.aws.amazon.com/apigateway/latest/developerguide/
http-api-jwt-authorizer.html) takes the token from the identity source (Authorization header, with or
without a `Bearer ` prefix), checks the signature, `exp` (required), `nbf`/`iat` (if present), `iss`
(exact), `aud` (one of the configured audiences; `client_id` only when there is no `aud`) and, when the
route has AuthorizationScopes, that `scope`/`scp` holds at least one of them. Failures answer 401
`{"message":"Unauthorized"}` with a `www-authenticate: Bearer scope="" error="invalid_token"
error_description="..."` header; a scope mismatch answers 403 `{"message":"Forbidden"}`.

In the Lambda event, the claims are rendered as strings: numbers in decimal, arrays as
`[a b c]` (space separated, bracketed), as the deployed authorizer does.
"""

from __future__ import annotations

import base64
import json
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

DEFAULT_SECRET = "chatkeep-local-dev-secret"
ALGORITHM = "HS256"
DEV_KEY_ID = "chatkeep-local-dev"  # the `kid` of dev tokens: the key of /_local/jwks.json (dev_jwks)


def dev_secret() -> str:
    return os.environ.get("CHATKEEP_DEV_SECRET") or DEFAULT_SECRET


DEFAULT_TTL = 3600  # a token's lifetime unless asked otherwise (`chatkeep token --ttl`)


class AuthError(Exception):
    """The authorizer refuses the request. `status` 401 (bad/missing token) or 403 (scopes). `hint`: what to do,
    for the local body's `reason` only (API Gateway's `www-authenticate` carries the description alone)."""

    def __init__(self, description: str, status: int = 401, missing: bool = False, hint: str | None = None):
        super().__init__(description)
        self.description = description
        self.status = status
        self.missing = missing
        self.hint = hint

    @property
    def reason(self) -> str:
        return f"{self.description}: {self.hint}" if self.hint else self.description

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """API Gateway's answer, plus a `reason` in the body that only the local runtime gives (API Gateway's
        body is the `message` alone; a 401's reason is in its `www-authenticate` header)."""
        headers = {"content-type": "application/json"}
        if self.status == 403:
            return 403, headers, _json({"message": "Forbidden", "reason": self.reason})
        if not self.missing:
            headers["www-authenticate"] = (
                f'Bearer scope="" error="invalid_token" error_description="{self.description}"'
            )
        return 401, headers, _json({"message": "Unauthorized", "reason": self.reason})


def _json(body: dict[str, str]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def make_token(
    sub: str,
    workspace: str | None,
    *,
    name: str | None = None,
    scope: str | Iterable[str] | None = None,
    ttl: int = DEFAULT_TTL,
    issuer: str = "chatkeep-local",
    audience: str | list[str] | None = "chatkeep",
    workspace_claim: str = "workspace_id",
    secret: str | None = None,
    now: float | None = None,
    **extra: Any,
) -> str:
    """An HS256 token with the claims chatkeep reads (sub, workspace, given_name, scope) + iss/aud/iat/exp.
    Extra keyword claims are added as given (None values are dropped)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": sub, "iss": issuer, "iat": issued, "exp": issued + int(ttl)}
    if audience is not None:
        claims["aud"] = audience
    if workspace is not None:
        claims[workspace_claim] = workspace
    if name is not None:
        claims["given_name"] = name
    if scope:
        claims["scope"] = scope if isinstance(scope, str) else " ".join(scope)
    claims.update({k: v for k, v in extra.items() if v is not None})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dev secret is shorter than 32 bytes: fine locally
        return jwt.encode(claims, secret or dev_secret(), algorithm=ALGORITHM, headers={"kid": DEV_KEY_ID})


def dev_jwks(secret: str | None = None) -> dict[str, Any]:
    """The JWKS `chatkeep dev` serves at /_local/jwks.json: the dev secret as a symmetric (`oct`) HS256 key, so the
    realtime function verifies dev tokens with the same code that verifies an issuer's keys in AWS
    (chatkeep.realtime.tokens). Never served by anything deployed."""
    key = base64.urlsafe_b64encode((secret or dev_secret()).encode()).decode().rstrip("=")
    return {"keys": [{"kty": "oct", "kid": DEV_KEY_ID, "alg": ALGORITHM, "use": "sig", "k": key}]}


def extract_token(header_value: str | None) -> str | None:
    """The token from the identity source: API Gateway strips an optional `Bearer ` prefix."""
    if header_value is None:
        return None
    value = header_value.strip()
    if value.lower() == "bearer":
        return None
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value or None


def verify(
    token: str | None,
    *,
    issuer: str | None,
    audiences: Iterable[str],
    secret: str | None = None,
    required_scopes: Iterable[str] = (),
    now: float | None = None,
) -> dict[str, Any]:
    """Verify like the JWT authorizer; return the token's claims (raw JSON types) or raise AuthError."""
    if not token:
        raise AuthError("missing token", missing=True, hint="send 'Authorization: Bearer <token>'; "
                        "`chatkeep token --sub ID --workspace WS` prints one")
    now = time.time() if now is None else now
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise AuthError("the token is malformed") from exc
    if header.get("alg") != ALGORITHM:
        raise AuthError(f"signing method {header.get('alg')} is invalid")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            claims = jwt.decode(
                token,
                secret or dev_secret(),
                algorithms=[ALGORITHM],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
    except jwt.InvalidSignatureError as exc:
        raise AuthError("signature is invalid", hint="the token was not signed with this runtime's "
                        "CHATKEEP_DEV_SECRET (`chatkeep token` and `chatkeep dev` must see the same)") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthError("the token is malformed") from exc

    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise AuthError("the token does not have an expiration")
    if exp <= now:
        raise AuthError("the token has expired",
                        hint=f"it expired {int(now - exp)} s ago; `chatkeep token` prints a new one")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > now:
        raise AuthError("the token is not valid yet")
    iat = claims.get("iat")
    if isinstance(iat, int | float) and iat > now + 1:  # 1 s of slack for clock granularity
        raise AuthError("the token was issued in the future")
    if issuer is not None and claims.get("iss") != issuer:
        raise AuthError("the token does not have a valid issuer",
                        hint=f"iss is {claims.get('iss')!r}, this API expects {issuer!r}")
    allowed = set(audiences)
    if allowed:
        aud = claims.get("aud")
        if aud is not None:
            token_auds = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
        else:
            client_id = claims.get("client_id")
            token_auds = {client_id} if isinstance(client_id, str) else set()
        if not token_auds & allowed:
            raise AuthError("the token does not have a valid audience",
                            hint=f"this API accepts {', '.join(sorted(allowed))}")
    required = list(required_scopes)
    if required and not set(token_scopes(claims)) & set(required):
        raise AuthError("the token does not have the required scopes", status=403,
                        hint=f"this route needs one of: {', '.join(required)}")
    return claims


def token_scopes(claims: Mapping[str, Any]) -> list[str]:
    """Scopes of a token: `scope` (space separated) or `scp` (list or space separated)."""
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return [s for s in raw.split() if s]
    if isinstance(raw, list):
        return [str(s) for s in raw]
    return []


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list):
        return "[" + " ".join(_render(v) for v in value) + "]"
    if value is None:
        return ""
    # Nested objects: rendered as compact JSON (rare in access tokens; AWS's exact form not documented).
    return json.dumps(value, separators=(",", ":"))


def render_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as API Gateway puts them in requestContext.authorizer.jwt.claims: every value a string."""
    return {k: _render(v) for k, v in claims.items()}


def authorizer_context(claims: Mapping[str, Any], route_scopes: Iterable[str] = ()) -> dict[str, Any]:
    """requestContext.authorizer for a JWT route. `scopes` is null unless the route declares
    AuthorizationScopes (then: the token's scopes)."""
    route_scopes = list(route_scopes)
    return {
        "jwt": {
            "claims": render_claims(claims),
            "scopes": token_scopes(claims) if route_scopes else None,
        }
    }
