import pytest
from chatkeep.auth import principal_from_event
from chatkeep.errors import Forbidden, Unauthenticated
from chatkeep.settings import Settings
from conftest import claims_for, http_event


def test_given_claims_when_parsed_then_principal_with_name_and_scopes():
    event = http_event("POST", "/graphql", claims=claims_for("u1", "ws", name="Ada", scope="openid chatkeep/service"))
    p = principal_from_event(event, Settings())
    assert (p.sub, p.workspace_id, p.name, p.is_service) == ("u1", "ws", "Ada", True)


@pytest.mark.parametrize("scope", ["[chatkeep/service]", "[chatkeep/service openid]", "openid,chatkeep/service",
                                   "openid\tchatkeep/service", "chatkeep/service\n", "chatkeep/service,",
                                   "Chatkeep/service", "chatkeep/services", "chatkeep"])
def test_given_a_scope_that_is_not_exactly_the_service_token_then_not_a_service_principal(scope):
    # Issue 18: scopes are space-separated tokens (RFC 6749 section 3.3), compared exactly.
    claims = claims_for(scope=scope)
    assert not principal_from_event(http_event("GET", "/x", claims=claims), Settings()).is_service


@pytest.mark.parametrize("scope", ["chatkeep/service", "openid chatkeep/service", "openid  chatkeep/service "])
def test_given_the_service_token_among_space_separated_scopes_then_a_service_principal(scope):
    claims = claims_for(scope=scope)
    assert principal_from_event(http_event("GET", "/x", claims=claims), Settings()).is_service


@pytest.mark.parametrize(("claim", "value"), [("sub", "alice\n"), ("workspace_id", "w1\n"), ("sub", "\nalice"),
                                              ("workspace_id", "w1\r\n"), ("sub", "alice\x00")])
def test_given_a_claim_that_matches_only_up_to_a_newline_then_unauthenticated(claim, value):
    claims = claims_for()
    claims[claim] = value
    with pytest.raises(Unauthenticated):
        principal_from_event(http_event("GET", "/x", claims=claims), Settings())


def test_given_name_claim_only_then_fallback_to_name():
    claims = claims_for(name=None)
    claims["name"] = "Grace Hopper"
    assert principal_from_event(http_event("GET", "/x", claims=claims), Settings()).name == "Grace Hopper"


def test_given_no_authorizer_context_then_unauthenticated():
    with pytest.raises(Unauthenticated):
        principal_from_event(http_event("GET", "/x"), Settings())


@pytest.mark.parametrize("workspace", ["", "a#b", "x" * 129])
def test_given_unusable_workspace_claim_then_unauthenticated(workspace):
    with pytest.raises(Unauthenticated):
        principal_from_event(http_event("GET", "/x", claims=claims_for(workspace=workspace)), Settings())


def test_given_custom_workspace_claim_name_then_read_from_it():
    claims = claims_for()
    claims["custom:workspace_id"] = claims.pop("workspace_id")
    p = principal_from_event(http_event("GET", "/x", claims=claims), Settings(workspace_claim="custom:workspace_id"))
    assert p.workspace_id == "ws1"


def test_given_mismatching_workspace_header_then_forbidden_and_matching_is_fine():
    with pytest.raises(Forbidden):
        principal_from_event(http_event("GET", "/x", claims=claims_for(), headers={"X-Workspace-Id": "other"}),
                             Settings())
    ok = http_event("GET", "/x", claims=claims_for(), headers={"X-Workspace-Id": "ws1"})
    assert principal_from_event(ok, Settings()).workspace_id == "ws1"
