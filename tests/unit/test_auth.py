import pytest
from chatkeep.auth import principal_from_event
from chatkeep.errors import Forbidden, Unauthenticated
from chatkeep.settings import Settings
from conftest import claims_for, http_event


def test_given_claims_when_parsed_then_principal_with_name_and_scopes():
    event = http_event("POST", "/graphql", claims=claims_for("u1", "ws", name="Ada", scope="openid chatkeep/service"))
    p = principal_from_event(event, Settings())
    assert (p.sub, p.workspace_id, p.name, p.is_service) == ("u1", "ws", "Ada", True)


def test_given_api_gateway_rendered_list_scope_then_parsed():
    claims = claims_for(scope="[chatkeep/service openid]")
    assert principal_from_event(http_event("GET", "/x", claims=claims), Settings()).is_service


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
