"""The token of a WebSocket connection_init, verified as the HTTP API's JWT authorizer verifies a request's token:
the signature with a key of the issuer's JWKS (chosen by the token's `kid`), then `exp` (required), `nbf`, `iat`,
`iss` (exact) and `aud` (one of the configured audiences; `client_id` when the token has no `aud`).

The signing algorithm comes from the key, never from the token: RSA keys verify RS256/384/512, EC keys ES256/384/512,
and symmetric (`oct`) keys HS256 only. No public issuer publishes a symmetric key; `chatkeep dev` does (its dev
secret, at /_local/jwks.json), so that local tokens go through this same code.

The JWKS is fetched once per cold start (JWT_JWKS_URL, default <issuer>/.well-known/jwks.json) and again when a
token names a key it does not have (key rotation), at most once a minute. PyJWT is imported on the first
verification: only connection_init pays for it."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from chatkeep.errors import Unauthenticated
from chatkeep.settings import Settings, get_settings

ALGORITHMS = {"RSA": ("RS256", "RS384", "RS512"), "EC": ("ES256", "ES384", "ES512"), "oct": ("HS256",)}
REFETCH_AFTER_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 3.0
MAX_JWKS_BYTES = 256 * 1024


class TokenRejected(Unauthenticated):
    """The token is missing, malformed, badly signed, expired, or for another issuer or audience."""


def bearer(value: Any) -> str | None:
    """The token of an `authorization` value: an optional `Bearer ` prefix is stripped, as API Gateway does."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    elif value.lower() == "bearer":
        return None
    return value or None


def check_claims(claims: Mapping[str, Any], *, issuer: str | None, audiences: Iterable[str], now: float) -> None:
    """The registered claims, as the JWT authorizer checks them (raises TokenRejected with its wording)."""
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenRejected("the token does not have an expiration")
    if exp <= now:
        raise TokenRejected("the token has expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > now:
        raise TokenRejected("the token is not valid yet")
    iat = claims.get("iat")
    if isinstance(iat, int | float) and iat > now + 1:  # 1 s of slack for clock granularity
        raise TokenRejected("the token was issued in the future")
    if issuer is not None and claims.get("iss") != issuer:
        raise TokenRejected("the token does not have a valid issuer")
    allowed = set(audiences)
    if allowed:
        aud = claims.get("aud")
        if aud is not None:
            token_auds = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
        else:
            client_id = claims.get("client_id")
            token_auds = {client_id} if isinstance(client_id, str) else set()
        if not token_auds & allowed:
            raise TokenRejected("the token does not have a valid audience")


def _fetch_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"accept": "application/json"})  # noqa: S310 - configured URL
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
        return json.loads(response.read(MAX_JWKS_BYTES))


class JwksVerifier:
    def __init__(self, settings: Settings | None = None, *, fetch: Callable[[str], Any] = _fetch_json,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or get_settings()
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, Any] = {}  # kid -> PyJWK
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def verify(self, token: str | None) -> dict[str, Any]:
        """The token's claims (raw JSON types), or TokenRejected saying why not."""
        import jwt  # deferred: PyJWT (and cryptography) only for connection_init

        if not token:
            raise TokenRejected("missing token")
        issuer = self.settings.jwt_issuer
        if not issuer:
            raise TokenRejected("no token issuer is configured (JWT_ISSUER)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRejected("the token is malformed") from None
        key = self._key(header.get("kid"))
        algorithm = header.get("alg")
        if algorithm not in _algorithms(key):
            raise TokenRejected(f"signing method {algorithm} is invalid")
        try:
            with warnings.catch_warnings():  # a short `oct` secret (chatkeep dev's) is the issuer's choice
                warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
                claims = jwt.decode(token, key.key, algorithms=[algorithm], options={
                    "verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
                    "verify_iss": False})
        except jwt.InvalidSignatureError:
            raise TokenRejected("signature is invalid") from None
        except jwt.InvalidTokenError:
            raise TokenRejected("the token is malformed") from None
        check_claims(claims, issuer=issuer, audiences=self.settings.jwt_audience, now=self._clock())
        return claims

    def _key(self, kid: Any) -> Any:
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token names no signing key (kid)")
        with self._lock:
            key = self._keys.get(kid)
            stale = self._fetched_at is None or self._clock() - self._fetched_at >= REFETCH_AFTER_SECONDS
            if key is None and stale:
                self._load()
                key = self._keys.get(kid)
        if key is None:
            raise TokenRejected("the token's signing key is not in the issuer's JWKS")
        return key

    def _load(self) -> None:
        import jwt

        url = self.settings.jwks_url
        self._fetched_at = self._clock()
        if not url:
            return
        self.fetches += 1
        try:
            document = self._fetch(url)
        except Exception as exc:  # noqa: BLE001 - unreachable or unreadable: no key, the token is refused
            from chatkeep.observability import logger

            logger.warning("JWKS not read", extra={"url": url, "error": type(exc).__name__})
            return
        keys: dict[str, Any] = {}
        for entry in (document.get("keys") if isinstance(document, dict) else None) or []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not entry.get("kid"):
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                continue  # a key type or algorithm PyJWT cannot use here
        self._keys = keys


def _algorithms(key: Any) -> tuple[str, ...]:
    by_type = ALGORITHMS.get(key.key_type, ())
    declared = getattr(key, "algorithm_name", None)
    return (declared,) if declared in by_type else by_type


_verifier: JwksVerifier | None = None


def default_verifier() -> JwksVerifier:
    global _verifier
    if _verifier is None:
        _verifier = JwksVerifier()
    return _verifier


def reset() -> None:
    """Forget the verifier and its JWKS (tests and the local runtime change the issuer and its keys)."""
    global _verifier
    _verifier = None


__all__ = ["JwksVerifier", "TokenRejected", "bearer", "check_claims", "default_verifier", "reset"]
