"""`chatkeep dev --bedrock`: the functions' ConverseStream calls go to real Amazon Bedrock, signed with the
caller's AWS credentials.

The local runtime gives every function fake credentials (they talk to moto), so the worker cannot sign for
Bedrock itself. Its bedrock-runtime client still points at the local endpoint (`BEDROCK_ENDPOINT_URL`), and
this proxy re-signs each request with the credentials the caller had when `chatkeep dev` started (botocore's
default chain: environment, profile, SSO, ...) and streams Bedrock's answer back byte for byte (event-stream
frames and error bodies untouched), so the product code runs exactly as it would against Bedrock. Every request
is recorded by the stand-in's request log as usual (`GET /_local/model/requests`)."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote

log = logging.getLogger("chatkeep_local.model")
# What is passed through from Bedrock's answer (hop-by-hop headers and lengths are ours to set).
_PASSED_HEADERS = ("content-type", "x-amzn-requestid", "x-amzn-errortype", "x-amzn-bedrock-content-type")


class BedrockProxy:
    def __init__(self, *, region: str, credentials: Any, endpoint: str | None = None) -> None:
        """`credentials`: botocore credentials (frozen at start); `endpoint`: Bedrock Runtime's URL
        (default https://bedrock-runtime.{region}.amazonaws.com)."""
        import urllib3

        self.region = region
        self.credentials = credentials
        self.endpoint = (endpoint or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=16, retries=False)

    @classmethod
    def from_caller(cls, region: str, endpoint: str | None = None) -> BedrockProxy:
        """The caller's credentials, resolved NOW (before the local runtime replaces the environment's)."""
        import botocore.session

        credentials = botocore.session.get_session().get_credentials()
        if credentials is None:
            raise SystemExit("chatkeep dev --bedrock: no AWS credentials found (set AWS_PROFILE, run "
                             "`aws sso login`, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
        return cls(region=region, credentials=credentials.get_frozen_credentials(), endpoint=endpoint)

    def signed_headers(self, model_id: str, body: bytes) -> tuple[str, dict[str, str]]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        url = f"{self.endpoint}/model/{quote(model_id, safe='')}/converse-stream"
        request = AWSRequest(method="POST", url=url, data=body,
                             headers={"Content-Type": "application/json",
                                      "Accept": "application/vnd.amazon.eventstream"})
        SigV4Auth(self.credentials, "bedrock", self.region).add_auth(request)
        return url, dict(request.headers.items())

    def forward(self, handler: BaseHTTPRequestHandler, model_id: str, body: bytes) -> int:
        """Send the request to Bedrock and stream its answer to `handler`'s client; -> the status."""
        url, headers = self.signed_headers(model_id, body)
        try:
            upstream = self.pool.request("POST", url, body=body, headers=headers, preload_content=False,
                                         timeout=self._timeout())
        except Exception as exc:  # noqa: BLE001 - any failure to reach Bedrock is a 502 to the local caller
            log.warning("bedrock proxy: %s", exc)
            payload = f'{{"message": "chatkeep dev --bedrock could not reach {self.endpoint}: {exc}"}}'.encode()
            handler.send_response(502)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return 502
        try:
            handler.send_response(upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() in _PASSED_HEADERS:
                    handler.send_header(name, value)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for chunk in upstream.stream(16 * 1024, decode_content=False):
                if chunk:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        finally:
            upstream.release_conn()
        return int(upstream.status)

    @staticmethod
    def _timeout() -> Any:
        import urllib3

        return urllib3.Timeout(connect=10, read=120)
