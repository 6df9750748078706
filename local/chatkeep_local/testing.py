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
    if path.endswith("/model"):  # what the agent-turn worker does: bedrock-runtime at BEDROCK_ENDPOINT_URL
        import os

        import boto3

        client = boto3.client("bedrock-runtime", endpoint_url=os.environ["BEDROCK_ENDPOINT_URL"])
        stream = client.converse_stream(
            modelId="local.sample-v1:0", messages=[{"role": "user", "content": [{"text": "from a function"}]}]
        )["stream"]
        return {"text": "".join(e["contentBlockDelta"]["delta"]["text"] for e in stream if "contentBlockDelta" in e)}
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


# ------------------------------------------------------------------------- a `chatkeep dev` process


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalApiProcess:
    """`chatkeep dev` in a subprocess, for tests that drive it over HTTP (tests/e2e).

    `base_url`, `log_path`; `token(sub, workspace, name=None, scope=None, **claims)`,
    `gql(query, variables=None, token=None)` (the JSON answer), `request(method, path, token=None, **kw)`
    (a requests.Response), `drain()`, `drain_queues()`, `advance_clock(seconds)`, `sweep_ttl()`, `health()`,
    `dlq()`."""

    def __init__(
        self,
        template: str | Path,
        *,
        log_path: str | Path,
        cwd: str | Path | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ):
        from chatkeep_local.cli import parameter_overrides
        from chatkeep_local.template import jwt_defaults, load_template

        self.template = Path(template).resolve()
        self.cwd = Path(cwd) if cwd else self.template.parent
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args or [])
        self.env = dict(env or {})
        self.jwt = jwt_defaults(load_template(self.template), parameter_overrides(self.extra_args))
        self.process: object | None = None
        self._log_fh: object | None = None

    # -- lifecycle
    def start(self, timeout: float = 60.0) -> LocalApiProcess:
        import os
        import subprocess
        import sys
        import time

        import requests

        repo = Path(__file__).resolve().parents[2]
        env = dict(os.environ)
        paths = [str(repo / "layers" / "common"), str(repo / "local")]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env.update({"PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1", **self.env})
        state = self.log_path.parent / f"state-{self.port}"
        cmd = [
            sys.executable, "-m", "chatkeep_local.cli", "dev",
            "--port", str(self.port), "--template", str(self.template), "--state-dir", str(state),
            # the WebSocket API on a free port (port + 1 may be taken): health()["websocket"]["url"] says which
            *([] if "--ws-port" in self.extra_args else ["--ws-port", "0"]),
            *self.extra_args,
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = self.log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(  # noqa: S603
            cmd, cwd=self.cwd, env=env, stdout=self._log_fh, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chatkeep dev exited early:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.base_url}/_local/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"chatkeep dev did not become healthy in {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        import subprocess

        proc = self.process
        if proc is not None and proc.poll() is None:  # type: ignore[attr-defined]
            proc.terminate()  # type: ignore[attr-defined]
            try:
                proc.wait(timeout=10)  # type: ignore[attr-defined]
            except subprocess.TimeoutExpired:
                proc.kill()  # type: ignore[attr-defined]
                proc.wait(timeout=5)  # type: ignore[attr-defined]
        if self._log_fh is not None:
            self._log_fh.close()  # type: ignore[attr-defined]
            self._log_fh = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- helpers
    def token(self, sub: str, workspace: str | None, name: str | None = None, scope: str | None = None,
              **claims: object) -> str:
        import os

        from chatkeep_local.jwt_auth import make_token

        claim = self.env.get("WORKSPACE_CLAIM") or os.environ.get("WORKSPACE_CLAIM") or self.jwt["workspace_claim"]
        opts = {"issuer": self.jwt["issuer"], "audience": self.jwt["audience"], "workspace_claim": claim}
        for key in ("issuer", "audience", "ttl", "secret", "now", "workspace_claim"):
            if key in claims:
                opts[key] = claims.pop(key)
        return make_token(sub, workspace, name=name, scope=scope, **opts, **claims)  # type: ignore[arg-type]

    def request(self, method: str, path: str, token: str | None = None, **kwargs: object):  # noqa: ANN201
        import requests

        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 60)
        return requests.request(  # noqa: S113 - timeout is in kwargs
            method, f"{self.base_url}{path}", headers=headers, **kwargs  # type: ignore[arg-type]
        )

    def gql(self, query: str, variables: dict | None = None, token: str | None = None,
            **kwargs: object) -> dict:
        payload: dict = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        resp = self.request("POST", "/graphql", token=token, json=payload, **kwargs)
        try:
            return resp.json()
        except ValueError as exc:
            raise AssertionError(f"/graphql answered {resp.status_code}: {resp.text[:500]}") from exc

    def drain(self, timeout: float = 30.0) -> dict:
        resp = self.request("POST", "/_local/stream/drain", json={"timeout": timeout}, timeout=timeout + 10)
        body = resp.json()
        if resp.status_code != 200 or not body.get("drained", False):
            raise AssertionError(f"stream did not drain: {resp.status_code} {body}")
        return body

    def drain_queues(self, timeout: float = 30.0) -> dict:
        """Wait until every polled SQS queue is empty and no SQS-triggered invocation is running."""
        resp = self.request("POST", "/_local/queues/drain", json={"timeout": timeout}, timeout=timeout + 10)
        body = resp.json()
        if resp.status_code != 200 or not body.get("drained", False):
            raise AssertionError(f"queues did not drain: {resp.status_code} {body}")
        return body

    def advance_clock(self, seconds: float) -> float:
        return float(self.request("POST", "/_local/clock", json={"advance_seconds": seconds}).json()["offset"])

    def sweep_ttl(self) -> int:
        return int(self.request("POST", "/_local/ttl/sweep").json()["deleted"])

    def health(self) -> dict:
        return self.request("GET", "/_local/health").json()

    def dlq(self) -> list:
        return self.request("GET", "/_local/dlq").json()["items"]
