"""chatkeep_local.websocket_template / websocket_dev: a template's WebSocket API, read and served with its
functions' handlers (a tiny test template; chatkeep's template.yaml declares none yet)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chatkeep_local.lambda_runtime import FunctionInvoker
from chatkeep_local.template import functions, load_template
from chatkeep_local.websocket_dev import MANAGEMENT_ENDPOINT_ENV, from_template, start_for_dev
from chatkeep_local.websocket_template import DEFAULT_STAGE, websocket_apis
from websockets.sync.client import connect

TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Parameters:
  StageName:
    Type: String
    Default: live
Globals:
  Function:
    Runtime: python3.13
    Handler: app.lambda_handler
Resources:
  RealtimeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/realtime/
      FunctionName: chatkeep-realtime
      Environment:
        Variables:
          WEBSOCKET_MANAGEMENT_ENDPOINT: !Sub "https://${RealtimeApi}.execute-api.${AWS::Region}.amazonaws.com/${StageName}"
  AuditFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/audit/
  RealtimeApi:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: realtime
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: $request.body.type
  HttpOnlyApi:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: not-a-websocket
      ProtocolType: HTTP
  RealtimeStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref RealtimeApi
      StageName: !Ref StageName
      AutoDeploy: true
  RealtimeIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref RealtimeApi
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub >-
        arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${RealtimeFunction.Arn}/invocations
  AuditIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref RealtimeApi
      IntegrationType: AWS_PROXY
      IntegrationUri: !GetAtt AuditFunction.Arn
  ElsewhereIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref RealtimeApi
      IntegrationType: AWS_PROXY
      IntegrationUri: arn:aws:lambda:us-east-1:999999999999:function:someone-else
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref RealtimeApi
      RouteKey: $connect
      AuthorizationType: NONE
      Target: !Sub integrations/${RealtimeIntegration}
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref RealtimeApi
      RouteKey: $default
      Target: !Join [/, [integrations, !Ref RealtimeIntegration]]
  DisconnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref RealtimeApi
      RouteKey: $disconnect
      Target: !Sub integrations/${RealtimeIntegration}
  AuditRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref RealtimeApi
      RouteKey: audit
      RouteResponseSelectionExpression: $default
      Target: !Sub integrations/${AuditIntegration}
  ElsewhereRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref RealtimeApi
      RouteKey: elsewhere
      Target: !Sub integrations/${ElsewhereIntegration}
  UntargetedRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref RealtimeApi
      RouteKey: untargeted
"""

REALTIME_HANDLER = """\
import os

import boto3



def lambda_handler(event, context):
    context_ = event["requestContext"]
    if context_["eventType"] == "CONNECT":
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "graphql-transport-ws"}}
    if context_["eventType"] == "MESSAGE":
        client = boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["WEBSOCKET_MANAGEMENT_ENDPOINT"])
        client.post_to_connection(ConnectionId=context_["connectionId"], Data=("pushed " + event["body"]).encode())
    return {"statusCode": 200}
"""

AUDIT_HANDLER = """\
def lambda_handler(event, context):
    return {"statusCode": 200, "body": "audited by " + context.function_name}
"""


def write_app(root: Path) -> Path:
    for name, code in (("realtime", REALTIME_HANDLER), ("audit", AUDIT_HANDLER)):
        (root / "functions" / name).mkdir(parents=True)
        (root / "functions" / name / "app.py").write_text(code, encoding="utf-8")
    path = root / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


@pytest.fixture
def template(tmp_path):
    return load_template(write_app(tmp_path))


def test_reads_the_websocket_api_its_stage_and_the_function_behind_each_route(template):
    apis = websocket_apis(template)
    assert list(apis) == ["RealtimeApi"]  # the HTTP-protocol ApiGatewayV2 API is not a WebSocket API
    api = apis["RealtimeApi"]
    assert (api.stage, api.route_selection_expression) == ("live", "$request.body.type")
    assert {key: (r.function, r.route_response) for key, r in api.routes.items()} == {
        "$connect": ("RealtimeFunction", False),
        "$default": ("RealtimeFunction", False),
        "$disconnect": ("RealtimeFunction", False),
        "audit": ("AuditFunction", True),
    }
    assert set(api.skipped) == {"ElsewhereRoute", "UntargetedRoute"}
    assert "names no function" in api.skipped["ElsewhereRoute"]


def test_parameter_overrides_reach_the_stage(template):
    assert websocket_apis(template, {"StageName": "beta"})["RealtimeApi"].stage == "beta"


def test_a_template_without_a_websocket_api_gives_nothing(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n", encoding="utf-8")
    assert websocket_apis(load_template(path)) == {}
    assert from_template(load_template(path), None, {}) is None


def test_a_stage_less_api_uses_the_default_stage_name(tmp_path):
    text = TEMPLATE.replace("Type: AWS::ApiGatewayV2::Stage", "Type: AWS::ApiGatewayV2::Deployment")
    (tmp_path / "template.yaml").write_text(text, encoding="utf-8")
    assert websocket_apis(load_template(tmp_path / "template.yaml"))["RealtimeApi"].stage == DEFAULT_STAGE


def test_the_dev_hook_serves_the_routes_into_the_functions_and_points_them_at_the_management_api(
    template, monkeypatch
):
    monkeypatch.setenv(MANAGEMENT_ENDPOINT_ENV, "https://unused.execute-api.us-east-1.amazonaws.com/live")
    invokers = {lid: FunctionInvoker(spec) for lid, spec in functions(template).items()}
    api = start_for_dev(template, None, invokers, port=0)
    assert api is not None
    try:
        assert os.environ[MANAGEMENT_ENDPOINT_ENV] == api.management_endpoint
        assert api.management_endpoint.endswith("/live") and api.url.endswith("/live")
        with connect(api.url, subprotocols=["graphql-transport-ws"]) as ws:
            assert ws.subprotocol == "graphql-transport-ws"
            ws.send('{"type": "subscribe"}')
            assert ws.recv(timeout=10) == 'pushed {"type": "subscribe"}'
            ws.send('{"type": "audit"}')
            assert ws.recv(timeout=10) == "audited by AuditFunction"
        assert [p.status for p in api.pushes] == [200]
    finally:
        api.stop()


def test_an_explicit_env_override_of_the_management_endpoint_is_kept(template, monkeypatch):
    monkeypatch.setenv(MANAGEMENT_ENDPOINT_ENV, "http://elsewhere:1234/live")
    invokers = {lid: FunctionInvoker(spec) for lid, spec in functions(template).items()}
    api = start_for_dev(template, None, invokers, port=0,
                        env_overrides={MANAGEMENT_ENDPOINT_ENV: "http://elsewhere:1234/live"})
    assert api is not None
    try:
        assert os.environ[MANAGEMENT_ENDPOINT_ENV] == "http://elsewhere:1234/live"
    finally:
        api.stop()
