"""chatkeep.realtime.tokens: a connection_init's token verified as the HTTP API's JWT authorizer verifies one, with
an issuer's JWKS (RSA, as Cognito and Auth0 publish them) and with chatkeep dev's symmetric key; the algorithm comes
from the key, never from the token; the JWKS is read once per cold start and again (rate-limited) for a new kid."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from chatkeep.realtime.tokens import JwksVerifier, TokenRejected, bearer, check_claims
from chatkeep.settings import Settings
from chatkeep_local.jwt_auth import dev_jwks, make_token
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST"
SETTINGS = Settings(jwt_issuer=ISSUER, jwt_audience=("app-client",))


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks_of(key: Any, kid: str = "k1") -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": kid, "alg": "RS256", "use": "sig"}]}


def rs256(key: Any, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "alice", "custom:workspace_id": "ws1", "iss": ISSUER, "client_id": "app-client",
            "token_use": "access", "iat": now, "exp": now + 600, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256",
                      headers={"kid": kid})


class Fetcher:
    def __init__(self, *documents: Any) -> None:
        self.documents = list(documents)
        self.urls: list[str] = []

    def __call__(self, url: str) -> Any:
        self.urls.append(url)
        document = self.documents.pop(0) if len(self.documents) > 1 else self.documents[0]
        if isinstance(document, Exception):
            raise document
        return document


def test_given_an_issuers_rsa_key_when_its_token_is_verified_then_the_claims_come_back(rsa_key):
    fetch = Fetcher(jwks_of(rsa_key))
    claims = JwksVerifier(SETTINGS, fetch=fetch).verify(rs256(rsa_key))
    assert claims["sub"] == "alice" and claims["client_id"] == "app-client"  # Cognito access token: no aud
    assert fetch.urls == [f"{ISSUER}/.well-known/jwks.json"]


def test_given_many_tokens_of_one_cold_start_then_the_jwks_is_read_once(rsa_key):
    fetch = Fetcher(jwks_of(rsa_key))
    verifier = JwksVerifier(SETTINGS, fetch=fetch)
    for _ in range(5):
        verifier.verify(rs256(rsa_key))
    assert len(fetch.urls) == 1


def test_given_a_rotated_key_when_a_token_names_it_then_the_jwks_is_read_again_at_most_once_a_minute(rsa_key):
    newer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = [1000.0]
    fetch = Fetcher(jwks_of(rsa_key, "old"), jwks_of(newer, "new"))
    verifier = JwksVerifier(SETTINGS, fetch=fetch, clock=lambda: now[0])
    with pytest.raises(TokenRejected):
        verifier.verify(rs256(rsa_key, "old", exp=int(now[0]) - 1))  # reads the JWKS (expired: refused anyway)
    now[0] += 30
    with pytest.raises(TokenRejected, match="not in the issuer's JWKS"):
        verifier.verify(rs256(newer, "new", iat=int(now[0]), exp=int(now[0]) + 60))  # too soon to read again
    now[0] += 31
    assert verifier.verify(rs256(newer, "new", iat=int(now[0]), exp=int(now[0]) + 60))["sub"] == "alice"
    assert len(fetch.urls) == 2


def test_given_an_hs256_token_signed_with_the_rsa_public_key_then_refused(rsa_key):
    # The classic algorithm confusion: the token picks HS256 and uses the public key as the secret.
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = _hs256_with(pem)
    with pytest.raises(TokenRejected, match="signing method HS256 is invalid"):
        JwksVerifier(SETTINGS, fetch=Fetcher(jwks_of(rsa_key))).verify(forged)


def _hs256_with(secret: bytes) -> str:
    import base64
    import hashlib
    import hmac

    def part(value: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing = part({"alg": "HS256", "kid": "k1"}) + b"." + part(
        {"sub": "mallory", "iss": ISSUER, "client_id": "app-client", "exp": int(time.time()) + 60})
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing, hashlib.sha256).digest()).rstrip(b"=")
    return (signing + b"." + signature).decode()


def test_given_chatkeep_devs_jwks_when_a_dev_token_is_verified_then_the_oct_key_verifies_hs256():
    settings = Settings(jwt_issuer="chatkeep-local", jwt_audience=("chatkeep",), jwt_jwks_url="http://x/jwks")
    claims = JwksVerifier(settings, fetch=Fetcher(dev_jwks())).verify(make_token("alice", "ws1"))
    assert claims["workspace_id"] == "ws1"


def test_given_an_unreachable_jwks_then_tokens_are_refused_not_raised(rsa_key):
    verifier = JwksVerifier(SETTINGS, fetch=Fetcher(OSError("connection refused")))
    with pytest.raises(TokenRejected, match="not in the issuer's JWKS"):
        verifier.verify(rs256(rsa_key))


def test_given_no_issuer_configured_then_every_token_is_refused(rsa_key):
    with pytest.raises(TokenRejected, match="no token issuer"):
        JwksVerifier(Settings(), fetch=Fetcher(jwks_of(rsa_key))).verify(rs256(rsa_key))


@pytest.mark.parametrize("claims, reason", [
    ({"exp": None}, "expiration"),
    ({"exp": 99}, "expired"),
    ({"exp": 10_000, "nbf": 5000}, "not valid yet"),
    ({"exp": 10_000, "iat": 5000}, "issued in the future"),
    ({"exp": 10_000, "iss": "https://other"}, "issuer"),
    ({"exp": 10_000, "aud": ["x", "y"]}, "audience"),
    ({"exp": 10_000, "client_id": "x"}, "audience"),
])
def test_given_registered_claims_the_authorizer_refuses_then_refused_with_its_reason(claims, reason):
    body = {"iss": ISSUER, "aud": "app-client", **claims}
    if "client_id" in claims:
        body.pop("aud")
    with pytest.raises(TokenRejected, match=reason):
        check_claims({k: v for k, v in body.items() if v is not None}, issuer=ISSUER, audiences=["app-client"],
                     now=1000)


@pytest.mark.parametrize("value, token", [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("abc", "abc"),
                                          ("Bearer", None), ("", None), (None, None), (42, None)])
def test_given_an_authorization_value_then_the_bearer_prefix_is_optional(value, token):
    assert bearer(value) == token
