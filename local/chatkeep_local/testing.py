"""A small SAM application shaped like chatkeep's template.yaml, with throwaway handlers, for the local
runtime's own tests (so they do not depend on the real functions being written)."""

from __future__ import annotations

from pathlib import Path

SAMPLE_TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Description: sample app for chatkeep_local tests

Parameters:
  JwtIssuer:
    Type: String
    Default: https://issuer.chatkeep.local
  JwtAudience:
    Type: String
    Default: chatkeep-api
  WorkspaceClaim:
    Type: String
    Default: workspace_id
  CorsAllowOrigins:
    Type: CommaDelimitedList
    Default: "http://localhost:5173,https://app.example.com"
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  RetentionDays:
    Type: Number
    Default: 30

Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]

Globals:
  Function:
    Runtime: python3.13
    Timeout: 10
    MemorySize: 256
    Handler: app.lambda_handler
    Layers: [!Ref CommonLayer]
    Environment:
      Variables:
        CHAT_TABLE_NAME: !Ref ChatTable
        LOG_LEVEL: !If [IsProd, WARNING, DEBUG]
        POWERTOOLS_SERVICE_NAME: chatkeep

Resources:
  HttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: JwtAuthorizer
        Authorizers:
          JwtAuthorizer:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: !Ref JwtIssuer
              audience:
                - !Ref JwtAudience
      CorsConfiguration:
        AllowOrigins: !Ref CorsAllowOrigins
        AllowHeaders: [authorization, content-type, idempotency-key, x-workspace-id]
        AllowMethods: [GET, POST, PATCH, DELETE, OPTIONS]
        MaxAge: 600

  CommonLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/common
      CompatibleRuntimes: [python3.13]
    Metadata:
      BuildMethod: python3.13

  ChatTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: gsi1pk, AttributeType: S}
        - {AttributeName: gsi1sk, AttributeType: S}
        - {AttributeName: lsi1sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: gsi1
          KeySchema:
            - {AttributeName: gsi1pk, KeyType: HASH}
            - {AttributeName: gsi1sk, KeyType: RANGE}
          Projection: {ProjectionType: ALL}
      LocalSecondaryIndexes:
        - IndexName: lsi1
          KeySchema:
            - {AttributeName: pk, KeyType: HASH}
            - {AttributeName: lsi1sk, KeyType: RANGE}
          Projection: {ProjectionType: KEYS_ONLY}
      StreamSpecification:
        StreamViewType: NEW_AND_OLD_IMAGES
      TimeToLiveSpecification:
        AttributeName: purge_at
        Enabled: true
      PointInTimeRecoverySpecification:
        PointInTimeRecoveryEnabled: true

  SearchIndexTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: spk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: by_session
          KeySchema:
            - {AttributeName: spk, KeyType: HASH}
            - {AttributeName: sk, KeyType: RANGE}
          Projection: {ProjectionType: KEYS_ONLY}

  IdempotencyTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: id, AttributeType: S}
      KeySchema:
        - {AttributeName: id, KeyType: HASH}
      TimeToLiveSpecification:
        AttributeName: expiration
        Enabled: true

  StreamDLQ:
    Type: AWS::SQS::Queue

  GraphqlApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/graphql_api/
      Environment:
        Variables:
          SEARCH_TABLE_NAME: !Ref SearchIndexTable
          WORKSPACE_CLAIM: !Ref WorkspaceClaim
          STACK_LABEL: !Sub "${AWS::StackName}-${Stage}-${ChatTable}"
          TABLE_ARN: !GetAtt ChatTable.Arn
          ONLY_IN_PROD: !If [IsProd, "yes", !Ref AWS::NoValue]
      Events:
        Graphql:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Path: /graphql
            Method: POST

  RestApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/rest_api/
      Environment:
        Variables:
          IDEMPOTENCY_TABLE_NAME: !Ref IdempotencyTable
          LOG_LEVEL: INFO
      Events:
        GetSession:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Path: "/v1/sessions/{session_id}", Method: GET}
        SearchSessions:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Path: "/v1/channels/{channel_id}/sessions/search", Method: GET}
        ListSessions:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Path: "/v1/channels/{channel_id}/sessions", Method: GET}
        CreateAgent:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Path: /v1/agents
            Method: POST
            Auth:
              AuthorizationScopes: [chatkeep/service]
        Files:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Path: "/v1/files/{proxy+}", Method: ANY}
        OpenApi:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Path: /openapi.json
            Method: GET
            Auth: {Authorizer: NONE}
        Docs:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Path: /docs
            Method: GET
            Auth:
              Authorizer: NONE

  StreamProcessorFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/stream_processor/
      Environment:
        Variables:
          SEARCH_TABLE_NAME: !Ref SearchIndexTable
      Events:
        ChatStream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt ChatTable.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 10
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 3
            MaximumRecordAgeInSeconds: 3600
            DestinationConfig:
              OnFailure:
                Destination: !GetAtt StreamDLQ.Arn

Outputs:
  ApiUrl:
    Value: !Sub "https://${HttpApi}.execute-api.${AWS::Region}.amazonaws.com"
"""

ECHO_HANDLER = '''\
"""Throwaway handler: answers with the event it received (and a few behaviours on demand)."""
import base64
import json
import time


def lambda_handler(event, context):
    path = event.get("rawPath", "")
    if path.endswith("/boom"):
        raise RuntimeError("boom")
    if path.endswith("/plain"):
        return {"hello": "world"}
    if path.endswith("/binary"):
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(b"\\x00\\x01\\x02").decode(), "isBase64Encoded": True,
                "cookies": ["a=1; Path=/", "b=2"]}
    if path.endswith("/bad"):
        return {"statusCode": 200, "body": {"not": "a string"}}
    if path.endswith("/slow"):
        time.sleep(0.2)
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-fn": context.function_name},
        "body": json.dumps({"event": event, "remaining": context.get_remaining_time_in_millis(),
                            "memory": context.memory_limit_in_mb}),
    }
'''

STREAM_HANDLER = '''\
"""Throwaway stream handler: appends every batch it gets to the file named by STREAM_LOG."""
import json
import os


def lambda_handler(event, context):
    with open(os.environ["STREAM_LOG"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event) + "\\n")
    return {"batchItemFailures": []}
'''


def write_sample_app(root: str | Path, *, stream_handler: bool = True) -> Path:
    """Write SAMPLE_TEMPLATE and throwaway handlers under `root`; returns the template's path."""
    root = Path(root)
    (root / "layers" / "common").mkdir(parents=True, exist_ok=True)
    for name in ("graphql_api", "rest_api"):
        (root / "functions" / name).mkdir(parents=True, exist_ok=True)
        (root / "functions" / name / "app.py").write_text(ECHO_HANDLER, encoding="utf-8")
    (root / "functions" / "stream_processor").mkdir(parents=True, exist_ok=True)
    if stream_handler:
        (root / "functions" / "stream_processor" / "app.py").write_text(STREAM_HANDLER, encoding="utf-8")
    path = root / "template.yaml"
    path.write_text(SAMPLE_TEMPLATE, encoding="utf-8")
    return path


__all__ = ["ECHO_HANDLER", "SAMPLE_TEMPLATE", "STREAM_HANDLER", "write_sample_app"]
