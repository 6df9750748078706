"""A small SAM application with a WebSocket API (AWS::ApiGatewayV2 resources, as chatkeep's template.yaml will declare
them), for the WebSocket emulator's own tests: a realtime function that accepts `graphql-transport-ws` and pushes
every message back through the @connections API named by WEBSOCKET_MANAGEMENT_ENDPOINT, an audit function on a
custom route with a route response, and routes the emulator must skip."""

from __future__ import annotations

from pathlib import Path

WEBSOCKET_SAMPLE_TEMPLATE = """\
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


def write_websocket_sample_app(root: str | Path) -> Path:
    """Write WEBSOCKET_SAMPLE_TEMPLATE and its two handlers under `root`; returns the template's path."""
    root = Path(root)
    for name, code in (("realtime", REALTIME_HANDLER), ("audit", AUDIT_HANDLER)):
        (root / "functions" / name).mkdir(parents=True)
        (root / "functions" / name / "app.py").write_text(code, encoding="utf-8")
    path = root / "template.yaml"
    path.write_text(WEBSOCKET_SAMPLE_TEMPLATE, encoding="utf-8")
    return path


__all__ = ["AUDIT_HANDLER", "REALTIME_HANDLER", "WEBSOCKET_SAMPLE_TEMPLATE", "write_websocket_sample_app"]
