"""chatkeep_local.template: the CloudFormation-aware loader and the views derived from it."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from chatkeep_local import template as tpl
from chatkeep_local.testing import write_sample_app
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sample(tmp_path):
    return tpl.load_template(write_sample_app(tmp_path))


def test_short_tags_become_long_form(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        """
AWSTemplateFormatVersion: 2010-09-09
Resources:
  X:
    Type: AWS::SQS::Queue
    Properties:
      A: !Ref Foo
      B: !GetAtt Table.StreamArn
      C: !Sub "${AWS::StackName}-x"
      D: !Sub ["${a}-y", {a: !Ref Foo}]
      E: !If [Cond, !Ref AWS::NoValue, "v"]
      F: !Join [",", [a, b]]
      G: !Select [0, !Split [",", "a,b"]]
      H: !FindInMap [M, k1, k2]
      I: !ImportValue other-stack-output
      J: !Base64 hello
      K: !Cidr [10.0.0.0/16, 2, 8]
      L: !GetAZs ""
      M: !Equals [!Ref Foo, bar]
      N: !Not [!Condition Cond]
      O: !And [!Condition Cond, !Or [!Condition Cond, !Condition Cond]]
"""
    )
    t = tpl.load_template(path)
    assert t["AWSTemplateFormatVersion"] == "2010-09-09"  # a string, not a date
    p = t["Resources"]["X"]["Properties"]
    assert p["A"] == {"Ref": "Foo"}
    assert p["B"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert p["C"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert p["D"] == {"Fn::Sub": ["${a}-y", {"a": {"Ref": "Foo"}}]}
    assert p["E"] == {"Fn::If": ["Cond", {"Ref": "AWS::NoValue"}, "v"]}
    assert p["F"] == {"Fn::Join": [",", ["a", "b"]]}
    assert p["G"] == {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}
    assert p["H"] == {"Fn::FindInMap": ["M", "k1", "k2"]}
    assert p["I"] == {"Fn::ImportValue": "other-stack-output"}
    assert p["J"] == {"Fn::Base64": "hello"}
    assert p["K"] == {"Fn::Cidr": ["10.0.0.0/16", 2, 8]}
    assert p["L"] == {"Fn::GetAZs": ""}
    assert p["M"] == {"Fn::Equals": [{"Ref": "Foo"}, "bar"]}
    assert p["N"] == {"Fn::Not": [{"Condition": "Cond"}]}
    assert p["O"] == {"Fn::And": [{"Condition": "Cond"}, {"Fn::Or": [{"Condition": "Cond"}] * 2}]}


def test_parameters_defaults_and_overrides(sample):
    params = tpl.parameters(sample)
    assert params["JwtIssuer"] == "https://issuer.chatkeep.local"
    assert params["CorsAllowOrigins"] == ["http://localhost:5173", "https://app.example.com"]
    assert params["RetentionDays"] == "30"
    assert tpl.parameters(sample, {"Stage": "prod"})["Stage"] == "prod"


def test_resolver(sample):
    r = tpl.Resolver(sample)
    assert r.resolve({"Ref": "ChatTable"}) == "ChatTable"
    assert r.resolve({"Ref": "JwtAudience"}) == "chatkeep-api"
    assert r.resolve({"Fn::Sub": "${AWS::StackName}/${ChatTable}/${!Literal}"}) == "chatkeep-local/ChatTable/${Literal}"
    assert r.resolve({"Fn::GetAtt": ["ChatTable", "Arn"]}).endswith(":table/ChatTable")
    assert r.resolve({"Fn::If": ["IsProd", "a", "b"]}) == "b"
    assert tpl.Resolver(sample, {"Stage": "prod"}).resolve({"Fn::If": ["IsProd", "a", "b"]}) == "a"
    assert r.resolve({"k": {"Fn::If": ["IsProd", "a", {"Ref": "AWS::NoValue"}]}}) == {}
    assert r.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}) == "a-dev"
    with pytest.raises(tpl.UnresolvableError):
        r.resolve({"Fn::ImportValue": "x"})
    with pytest.raises(tpl.UnresolvableError):
        r.resolve({"Ref": "Nope"})


def test_functions_merge_globals_and_resolve_environment(sample):
    fns = tpl.functions(sample)
    assert set(fns) == {"GraphqlApiFunction", "RestApiFunction", "StreamProcessorFunction"}
    g = fns["GraphqlApiFunction"]
    assert g.handler == "app.lambda_handler" and g.timeout == 10 and g.memory_size == 256
    assert g.module_file.name == "app.py" and g.module_file.parent.name == "graphql_api"
    assert g.environment == {
        "CHAT_TABLE_NAME": "ChatTable",
        "LOG_LEVEL": "DEBUG",
        "POWERTOOLS_SERVICE_NAME": "chatkeep",
        "SEARCH_TABLE_NAME": "SearchIndexTable",
        "WORKSPACE_CLAIM": "workspace_id",
        "STACK_LABEL": "chatkeep-local-dev-ChatTable",
        "TABLE_ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/ChatTable",
    }
    assert fns["RestApiFunction"].environment["LOG_LEVEL"] == "INFO"  # function overrides Globals
    assert [p.name for p in g.layers] == ["common"]


def test_routes(sample):
    rs = {r.route_key: r for r in tpl.routes(sample)}
    assert rs["POST /graphql"].function == "GraphqlApiFunction"
    assert rs["POST /graphql"].auth == "jwt"
    auth = rs["POST /graphql"].authorizer
    assert auth.issuer == "https://issuer.chatkeep.local" and auth.audiences == ["chatkeep-api"]
    assert rs["GET /docs"].auth == "none" and rs["GET /docs"].authorizer is None
    assert rs["GET /openapi.json"].auth == "none"
    assert rs["POST /v1/agents"].scopes == ["chatkeep/service"]
    assert rs["ANY /v1/files/{proxy+}"].method == "ANY"


def test_tables_kwargs(sample):
    specs = tpl.tables(sample)
    chat = specs["ChatTable"]
    assert chat.ttl_attribute == "purge_at"
    kw = chat.create_kwargs
    assert kw["TableName"] == "ChatTable"
    assert kw["BillingMode"] == "PAY_PER_REQUEST"
    assert kw["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert [g["IndexName"] for g in kw["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert [i["IndexName"] for i in kw["LocalSecondaryIndexes"]] == ["lsi1"]
    assert "PointInTimeRecoverySpecification" not in kw
    assert specs["IdempotencyTable"].ttl_attribute == "expiration"
    assert specs["SearchIndexTable"].ttl_attribute is None


def test_create_tables_with_moto(sample):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        assert tpl.create_tables(client, sample) == {
            "ChatTable": "ChatTable",
            "SearchIndexTable": "SearchIndexTable",
            "IdempotencyTable": "IdempotencyTable",
        }
        desc = client.describe_table(TableName="ChatTable")["Table"]
        assert desc["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert desc["GlobalSecondaryIndexes"][0]["IndexName"] == "gsi1"
        ttl = client.describe_time_to_live(TableName="ChatTable")["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "purge_at"}
        # idempotent, a subset, and renamed tables
        assert tpl.create_tables(client, sample, ["ChatTable"]) == {"ChatTable": "ChatTable"}
        assert tpl.create_tables(client, sample, {"SearchIndexTable": "search-x"}) == {
            "SearchIndexTable": "search-x"
        }
        assert "search-x" in client.list_tables()["TableNames"]
        with pytest.raises(KeyError):
            tpl.create_tables(client, sample, ["Nope"])


def test_stream_source(sample):
    src = tpl.stream_source(sample)
    assert src.function == "StreamProcessorFunction" and src.table == "ChatTable"
    assert src.batch_size == 10 and src.max_batching_window_s == 1
    assert src.report_batch_item_failures and src.bisect_on_error
    assert src.max_retry_attempts == 3 and src.max_record_age_s == 3600
    assert src.on_failure.endswith(":StreamDLQ")


def test_cors_and_jwt_defaults(sample):
    cors = tpl.cors_configuration(sample, "HttpApi")
    assert cors["AllowOrigins"] == ["http://localhost:5173", "https://app.example.com"]
    assert tpl.jwt_defaults(sample) == {
        "issuer": "https://issuer.chatkeep.local",
        "audience": "chatkeep-api",
        "workspace_claim": "workspace_id",
    }
    assert tpl.jwt_defaults(None)["issuer"] == "chatkeep-local"


def test_given_parameter_overrides_when_deriving_jwt_defaults_then_they_match_the_overridden_authorizer(sample):
    overrides = {"JwtIssuer": "https://issuer.override.test", "JwtAudience": "aud-override",
                 "WorkspaceClaim": "custom:workspace_id"}
    defaults = tpl.jwt_defaults(sample, overrides)
    assert defaults == {
        "issuer": "https://issuer.override.test",
        "audience": "aud-override",
        "workspace_claim": "custom:workspace_id",
    }
    authorizer = next(r.authorizer for r in tpl.routes(sample, overrides) if r.authorizer)
    assert (authorizer.issuer, authorizer.audiences) == (defaults["issuer"], [defaults["audience"]])
    no_routes = {"Parameters": {"JwtIssuer": {"Type": "String", "Default": "https://issuer.default.test"}}}
    assert tpl.jwt_defaults(no_routes, {"JwtIssuer": "https://issuer.override.test"})["issuer"] == (
        "https://issuer.override.test"
    )


@pytest.mark.skipif(not (REPO / "template.yaml").is_file(), reason="template.yaml not written yet")
def test_the_real_template_loads():
    t = tpl.load_template(REPO / "template.yaml")
    assert tpl.routes(t), "the template declares HTTP API routes"
    assert "ChatTable" in tpl.tables(t)
    assert tpl.tables(t)["ChatTable"].ttl_attribute
    for spec in tpl.functions(t).values():
        assert not spec.unresolved_env, f"{spec.logical_id}: {spec.unresolved_env}"
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        assert set(tpl.create_tables(client, t)) == set(tpl.tables(t))


def test_given_sams_alias_reference_when_resolved_then_it_is_the_function_arn_qualified_by_the_alias():
    t = tpl.load_template(REPO / "template.yaml")
    resolver = tpl.Resolver(t)
    assert resolver.resolve({"Ref": "RealtimeFunction.Alias"}) == tpl.function_arn("RealtimeFunction") + ":live"
    with pytest.raises(tpl.UnresolvableError):
        resolver.resolve({"Ref": "ChatTable.Alias"})


@pytest.mark.parametrize(("overrides", "expected"), [({}, None), ({"RestApiReservedConcurrency": "3"}, 3)])
def test_given_a_reserved_concurrency_parameter_then_the_function_spec_has_it_only_when_set(overrides, expected):
    # template.yaml: ReservedConcurrentExecutions is !If [..., !Ref RestApiReservedConcurrency, !Ref AWS::NoValue]
    spec = tpl.functions(tpl.load_template(REPO / "template.yaml"), overrides)["RestApiFunction"]
    assert spec.reserved_concurrency == expected
    assert spec.arn == "arn:aws:lambda:us-east-1:123456789012:function:" + (spec.function_name or spec.logical_id)
