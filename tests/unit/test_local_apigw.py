"""chatkeep_local.apigw: route matching, the payload-2.0 event, the response mapping, CORS."""

from __future__ import annotations

import base64
import json

import pytest
from chatkeep_local import apigw
from chatkeep_local.template import Route

# The key sets of a real HTTP API payload-2.0 event (API Gateway developer guide, "Working with AWS
# Lambda proxy integrations for HTTP APIs"): what AWS sends for a route with a JWT authorizer.
REAL_TOP_LEVEL = {
    "version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers", "queryStringParameters",
    "requestContext", "body", "pathParameters", "isBase64Encoded",
}  # + stageVariables, only when the stage declares some (ours do not)
REAL_CONTEXT = {
    "accountId", "apiId", "authorizer", "domainName", "domainPrefix", "http", "requestId", "routeKey",
    "stage", "time", "timeEpoch",
}
REAL_HTTP = {"method", "path", "protocol", "sourceIp", "userAgent"}


def route(path="/v1/sessions/{session_id}", method="GET", fn="Fn"):
    return Route(method=method, path=path, function=fn, auth="jwt")


# ---------------------------------------------------------------------------------------- matching


def test_match_path_variables_and_greedy():
    assert apigw.match_path("/v1/sessions/{id}", "/v1/sessions/ses_1") == {"id": "ses_1"}
    assert apigw.match_path("/v1/sessions/{id}", "/v1/sessions/") is None
    assert apigw.match_path("/v1/sessions/{id}", "/v1/sessions/a/b") is None
    assert apigw.match_path("/v1/sessions/{id}", "/v1/sessions/a%20b") == {"id": "a b"}
    assert apigw.match_path("/files/{proxy+}", "/files/a/b/c") == {"proxy": "a/b/c"}
    assert apigw.match_path("/files/{proxy+}", "/files") is None
    assert apigw.match_path("/graphql", "/graphql") == {}
    assert apigw.match_path("/graphql", "/graphql/") is None


def test_router_prefers_the_most_specific_route():
    router = apigw.Router(
        [
            route("/v1/channels/{cid}/sessions/{sid}", fn="var"),
            route("/v1/channels/{cid}/sessions/search", fn="literal"),
            route("/v1/{proxy+}", method="ANY", fn="greedy"),
            route("/v1/agents", method="ANY", fn="any"),
            route("/v1/agents", method="POST", fn="post"),
        ]
    )
    assert router.match("GET", "/v1/channels/c1/sessions/search").route.function == "literal"
    m = router.match("GET", "/v1/channels/c1/sessions/s1")
    assert m.route.function == "var" and m.path_parameters == {"cid": "c1", "sid": "s1"}
    assert router.match("POST", "/v1/agents").route.function == "post"
    assert router.match("GET", "/v1/agents").route.function == "any"
    assert router.match("DELETE", "/v1/x/y").route.function == "greedy"
    assert router.match("GET", "/other") is None
    default = apigw.Router([Route("ANY", "$default", "dflt", "none"), route("/a", fn="a")])
    assert default.match("GET", "/a").route.function == "a"
    assert default.match("PUT", "/zzz").route.function == "dflt"


def test_method_must_match():
    router = apigw.Router([route("/graphql", method="POST")])
    assert router.match("GET", "/graphql") is None
    assert router.match("post", "/graphql") is not None


# ----------------------------------------------------------------------------------------- events


def build(**kw):
    args = {
        "route": route(),
        "method": "GET",
        "raw_path": "/v1/sessions/ses_1",
        "raw_query": "limit=10&tag=a&tag=b",
        "headers": [
            ("Host", "127.0.0.1:3000"),
            ("User-Agent", "pytest"),
            ("Content-Type", "application/json"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
            ("Cookie", "c1=v1; c2=v2"),
            ("Authorization", "Bearer t"),
        ],
        "body": b'{"a":1}',
        "source_ip": "127.0.0.1",
        "path_parameters": {"session_id": "ses_1"},
        "authorizer": {"jwt": {"claims": {"sub": "u1"}, "scopes": None}},
        "api_id": "abcdefghij",
        "now": 1700000000.123,
    }
    args.update(kw)
    return apigw.build_event(**args)


def test_event_has_the_payload_2_shape():
    event = build()
    assert set(event) == REAL_TOP_LEVEL
    assert set(event["requestContext"]) == REAL_CONTEXT
    assert set(event["requestContext"]["http"]) == REAL_HTTP
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /v1/sessions/{session_id}"
    assert event["rawPath"] == "/v1/sessions/ses_1"
    assert event["rawQueryString"] == "limit=10&tag=a&tag=b"
    assert event["queryStringParameters"] == {"limit": "10", "tag": "a,b"}
    assert event["pathParameters"] == {"session_id": "ses_1"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    h = event["headers"]
    assert all(k == k.lower() for k in h)
    assert h["x-multi"] == "1,2" and "cookie" not in h
    assert h["x-forwarded-for"] == "127.0.0.1" and h["x-forwarded-port"] == "3000"
    assert h["x-forwarded-proto"] == "http" and h["x-amzn-trace-id"].startswith("Root=1-")
    ctx = event["requestContext"]
    assert ctx["accountId"] == "123456789012" and ctx["apiId"] == "abcdefghij"
    assert ctx["stage"] == "$default" and ctx["routeKey"] == event["routeKey"]
    assert ctx["time"] == "14/Nov/2023:22:13:20 +0000" and ctx["timeEpoch"] == 1700000000123
    assert ctx["http"] == {
        "method": "GET", "path": "/v1/sessions/ses_1", "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1", "userAgent": "pytest",
    }
    assert ctx["authorizer"] == {"jwt": {"claims": {"sub": "u1"}, "scopes": None}}
    assert event["body"] == '{"a":1}' and event["isBase64Encoded"] is False
    assert "stageVariables" not in event
    json.dumps(event)  # serialisable, like the real one


def test_event_minimal_request_omits_optional_keys():
    event = build(raw_query="", headers=[("Host", "localhost:3000")], body=b"", path_parameters={}, authorizer=None)
    for key in ("cookies", "queryStringParameters", "pathParameters", "body"):
        assert key not in event
    assert "authorizer" not in event["requestContext"]
    assert event["isBase64Encoded"] is False


def test_binary_body_is_base64():
    event = build(headers=[("Host", "h"), ("Content-Type", "application/octet-stream")], body=b"\x00\xff")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"
    form = build(headers=[("Host", "h"), ("Content-Type", "application/x-www-form-urlencoded")], body=b"a=1")
    assert form["isBase64Encoded"] is True


def test_request_id_shape():
    rid = apigw.request_id()
    assert len(rid) == 16 and rid.endswith("=")


# --------------------------------------------------------------------------------------- responses


def test_response_full():
    status, headers, body = apigw.http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-A": "1"},
            "cookies": ["a=1", "b=2"],
            "body": '{"ok":true}',
        }
    )
    assert status == 201 and body == b'{"ok":true}'
    assert ("content-type", "application/json") in headers
    assert [v for k, v in headers if k == "set-cookie"] == ["a=1", "b=2"]


def test_response_base64_and_empty():
    assert apigw.http_response({"statusCode": 200, "body": "AAE=", "isBase64Encoded": True})[2] == b"\x00\x01"
    assert apigw.http_response({"statusCode": 204})[:3:2] == (204, b"")


def test_response_without_status_code_is_200_json():
    status, headers, body = apigw.http_response({"data": {"x": 1}})
    assert status == 200 and json.loads(body) == {"data": {"x": 1}}
    assert headers == [("content-type", "application/json")]
    assert apigw.http_response("hello")[2] == b'"hello"'


@pytest.mark.parametrize(
    "bad",
    [{"statusCode": "abc"}, {"statusCode": 200, "body": {"a": 1}}, {"statusCode": 200, "headers": []},
     {"statusCode": 200, "body": "!!", "isBase64Encoded": True}, {"statusCode": 99}],
)
def test_invalid_responses(bad):
    with pytest.raises(apigw.InvalidResponse):
        apigw.http_response(bad)


# -------------------------------------------------------------------------------------------- CORS


def test_cors_preflight_and_decoration():
    cors = apigw.Cors(
        {"AllowOrigins": ["https://app.example.com"], "AllowMethods": ["GET", "POST"],
         "AllowHeaders": ["authorization", "content-type"], "MaxAge": 600}
    )
    req = {"origin": "https://app.example.com", "access-control-request-method": "POST"}
    assert cors.is_preflight("OPTIONS", req)
    status, headers, body = cors.preflight(req)
    h = dict(headers)
    assert status == 204 and body == b""
    assert h["access-control-allow-origin"] == "https://app.example.com"
    assert h["access-control-allow-methods"] == "GET,POST"
    assert h["access-control-allow-headers"] == "authorization,content-type"
    assert h["access-control-max-age"] == "600"
    denied = dict(cors.preflight({"origin": "https://evil.test", "access-control-request-method": "POST"})[1])
    assert "access-control-allow-origin" not in denied
    decorated = dict(cors.decorate([("access-control-allow-origin", "*")], "https://app.example.com"))
    assert decorated["access-control-allow-origin"] == "https://app.example.com"
    assert not apigw.Cors(None).is_preflight("OPTIONS", req)


def test_cors_wildcard():
    cors = apigw.Cors({"AllowOrigins": ["*"], "AllowMethods": ["*"], "AllowHeaders": ["*"]})
    h = dict(cors.preflight({"origin": "http://x", "access-control-request-method": "PATCH",
                             "access-control-request-headers": "authorization"})[1])
    assert h["access-control-allow-origin"] == "*"
    assert h["access-control-allow-headers"] == "authorization"
