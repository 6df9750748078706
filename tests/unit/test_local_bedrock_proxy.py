"""`chatkeep dev --bedrock`'s proxy: the worker's request, re-signed with the caller's credentials, reaches
Bedrock (here: a stand-in playing Bedrock upstream) and the answer streams back untouched through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from threading import Thread
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.credentials import Credentials
from chatkeep_local.bedrock_proxy import BedrockProxy
from chatkeep_local.bedrock_standin import StandInConfig, StandInModel
from chatkeep_local.bedrock_standin_http import StandInHttp

MODEL = "amazon.nova-lite-v1:0"


@pytest.fixture
def upstream() -> Iterator[Any]:
    bedrock = StandInModel(StandInConfig(chunk_delay_s=0.0))
    server = bedrock.serve()
    yield bedrock, server
    server.close()


@pytest.fixture
def proxied(upstream: Any) -> Iterator[tuple[Any, StandInModel, str]]:
    from http.server import BaseHTTPRequestHandler

    _, server = upstream
    local = StandInModel()
    proxy = BedrockProxy(region="us-east-1", credentials=Credentials("AKIDCALLER", "secret", "session").
                         get_frozen_credentials(), endpoint=server.url)
    routes = StandInHttp(local, upstream=proxy)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802
            routes.dispatch(self)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=httpd.serve_forever, daemon=True).start()
    yield proxy, local, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def client(endpoint: str) -> Any:
    return boto3.client("bedrock-runtime", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": 1}))


def test_given_the_proxy_when_the_worker_streams_then_bedrocks_answer_arrives_through_boto3(
        proxied: Any, upstream: Any) -> None:
    _, local, endpoint = proxied
    bedrock, _ = upstream
    response = client(endpoint).converse_stream(modelId=MODEL, messages=[
        {"role": "user", "content": [{"text": "hello"}]}])
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in response["stream"] if "contentBlockDelta" in e)
    assert text.startswith("Stand-in reply to 1 message")
    assert [r["model_id"] for r in bedrock.requests()] == [MODEL]  # it reached "Bedrock"
    assert [r["outcome"] for r in local.requests()] == ["forwarded to Amazon Bedrock"]  # and was recorded here


def test_given_bedrock_refuses_then_its_error_reaches_the_worker_unchanged(proxied: Any, upstream: Any) -> None:
    _, _, endpoint = proxied
    bedrock, _ = upstream
    bedrock.add_fault({"kind": "throttle"})
    c = client(endpoint)
    with pytest.raises(c.exceptions.ThrottlingException):
        c.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])


def test_the_request_is_signed_with_the_callers_credentials_for_bedrock() -> None:
    proxy = BedrockProxy(region="eu-west-1", credentials=Credentials("AKIDCALLER", "secret").get_frozen_credentials())
    url, headers = proxy.signed_headers("us.anthropic.claude-3-5-haiku-20241022-v1:0", b"{}")
    assert url == ("https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
                   "us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream")
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDCALLER/")
    assert "/eu-west-1/bedrock/aws4_request" in headers["Authorization"]
