"""chatkeep_local.jwt_auth: tokens and the JWT-authorizer checks."""

from __future__ import annotations

import json
import time

import jwt as pyjwt
import pytest
from chatkeep_local import jwt_auth

ISS, AUD = "https://issuer.test", "chatkeep-api"


def verify(token, **kw):
    return jwt_auth.verify(token, issuer=ISS, audiences=[AUD], **kw)


def token(**kw):
    kw.setdefault("issuer", ISS)
    kw.setdefault("audience", AUD)
    return jwt_auth.make_token("u1", "w1", **kw)


def test_good_token_claims():
    claims = verify(token(name="Ann", scope="chatkeep/service other"))
    assert claims["sub"] == "u1" and claims["workspace_id"] == "w1"
    assert claims["given_name"] == "Ann" and claims["scope"] == "chatkeep/service other"
    assert claims["iss"] == ISS and claims["aud"] == AUD
    assert claims["exp"] - claims["iat"] == 3600


def test_custom_workspace_claim_and_extra_claims():
    claims = verify(token(workspace_claim="custom:workspace_id", groups=["a", "b"]))
    assert claims["custom:workspace_id"] == "w1" and "workspace_id" not in claims
    assert claims["groups"] == ["a", "b"]


def test_expired():
    with pytest.raises(jwt_auth.AuthError) as exc:
        verify(token(now=time.time() - 7200))
    assert exc.value.status == 401 and "expired" in exc.value.description


def test_wrong_audience():
    with pytest.raises(jwt_auth.AuthError) as exc:
        verify(token(audience="someone-else"))
    assert "audience" in exc.value.description


def test_client_id_only_when_no_aud():
    assert verify(token(audience=None, client_id=AUD))["client_id"] == AUD
    with pytest.raises(jwt_auth.AuthError):
        verify(token(audience="other", client_id=AUD))


def test_wrong_issuer():
    with pytest.raises(jwt_auth.AuthError) as exc:
        verify(token(issuer="https://evil.test"))
    assert "issuer" in exc.value.description


def test_wrong_signature():
    with pytest.raises(jwt_auth.AuthError) as exc:
        verify(token(secret="another-secret-another-secret-123"))
    assert "signature" in exc.value.description


def test_other_algorithm_and_garbage():
    none_alg = pyjwt.encode({"sub": "u", "exp": time.time() + 60, "iss": ISS, "aud": AUD}, None, algorithm="none")
    with pytest.raises(jwt_auth.AuthError):
        verify(none_alg)
    with pytest.raises(jwt_auth.AuthError):
        verify("not-a-jwt")


def test_missing_exp_and_future_nbf():
    no_exp = pyjwt.encode({"sub": "u", "iss": ISS, "aud": AUD}, "x" * 32, algorithm="HS256")
    with pytest.raises(jwt_auth.AuthError):
        verify(no_exp, secret="x" * 32)
    with pytest.raises(jwt_auth.AuthError):
        verify(token(nbf=int(time.time()) + 600))


def test_missing_token():
    with pytest.raises(jwt_auth.AuthError) as exc:
        verify(None)
    status, headers, body = exc.value.response()
    assert status == 401 and json.loads(body)["message"] == "Unauthorized"
    assert "www-authenticate" not in headers
    # Locally only, the body says why and what to do (API Gateway's body is the message alone).
    assert json.loads(body)["reason"].startswith("missing token: send 'Authorization: Bearer <token>'")


def test_invalid_token_response_has_www_authenticate():
    with pytest.raises(jwt_auth.AuthError) as exc:
        verify(token(audience="x"))
    status, headers, body = exc.value.response()
    assert status == 401 and json.loads(body) == {
        "message": "Unauthorized",
        "reason": "the token does not have a valid audience: this API accepts chatkeep-api"}
    assert headers["www-authenticate"].startswith('Bearer scope="" error="invalid_token" error_description="')


@pytest.mark.parametrize("overrides, reason", [
    ({"ttl": -30}, "the token has expired: it expired 30 s ago; `chatkeep token` prints a new one"),
    ({"issuer": "someone-else"}, "the token does not have a valid issuer: iss is 'someone-else', "),
    ({"secret": "another-secret-another-secret-another"}, "signature is invalid: the token was not signed with"),
])
def test_given_a_refused_token_then_the_local_body_says_why_and_what_to_do(overrides, reason):
    now = int(time.time())
    with pytest.raises(jwt_auth.AuthError) as exc:
        verify(token(now=now, **overrides), now=now)
    assert json.loads(exc.value.response()[2])["reason"].startswith(reason)


def test_route_scopes():
    assert verify(token(scope="chatkeep/service"), required_scopes=["chatkeep/service"])
    with pytest.raises(jwt_auth.AuthError) as exc:
        verify(token(scope="read"), required_scopes=["chatkeep/service"])
    assert exc.value.status == 403
    assert json.loads(exc.value.response()[2]) == {
        "message": "Forbidden",
        "reason": "the token does not have the required scopes: this route needs one of: chatkeep/service"}


def test_extract_token():
    assert jwt_auth.extract_token("Bearer abc") == "abc"
    assert jwt_auth.extract_token("bearer abc") == "abc"
    assert jwt_auth.extract_token("abc") == "abc"
    assert jwt_auth.extract_token("Bearer ") is None
    assert jwt_auth.extract_token(None) is None


def test_claims_rendered_as_the_authorizer_does():
    rendered = jwt_auth.render_claims(
        {"sub": "u", "exp": 1700000000, "groups": ["a", "b"], "email_verified": True, "n": 1.5}
    )
    assert rendered == {"sub": "u", "exp": "1700000000", "groups": "[a b]", "email_verified": "true", "n": "1.5"}
    ctx = jwt_auth.authorizer_context({"sub": "u", "scope": "a b"})
    assert ctx == {"jwt": {"claims": {"sub": "u", "scope": "a b"}, "scopes": None}}
    assert jwt_auth.authorizer_context({"scope": "a b"}, ["a"])["jwt"]["scopes"] == ["a", "b"]


def test_given_the_dev_jwks_then_it_verifies_dev_tokens_by_their_kid_and_nothing_signed_otherwise():
    # What chatkeep dev serves at /_local/jwks.json, for the realtime function (chatkeep.realtime.tokens).
    (key,) = jwt_auth.dev_jwks()["keys"]
    signing = pyjwt.PyJWK(key)
    good = token()
    assert pyjwt.get_unverified_header(good)["kid"] == key["kid"] == jwt_auth.DEV_KEY_ID
    assert pyjwt.decode(good, signing.key, algorithms=["HS256"], audience=AUD)["sub"] == "u1"
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(token(secret="another-secret"), signing.key, algorithms=["HS256"], audience=AUD)
