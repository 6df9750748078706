"""Hostile input on the REST API, in process (moto): every refusal is a 4xx with a stable code and a message a
person can act on, nothing is written, and no internal detail comes back. schemathesis fuzzes the
OpenAPI document (tests/e2e/test_schemathesis.py); these are the cases a generator does not aim at."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import claims_for, http_event

INTERNALS = ("Traceback", 'File "', "botocore", "ChatTable", "W#", "pydantic")


def call(method: str, path: str, *, raw_body: str | None = None, base64_body: bytes | None = None,
         headers: dict[str, str] | None = None, query: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    from chatkeep.rest.app import handler

    event = http_event(method, path, claims=claims_for(), raw_body=raw_body, headers=headers, query=query)
    if base64_body is not None:
        event["body"] = base64.b64encode(base64_body).decode()
        event["isBase64Encoded"] = True
    out = handler(event, None)
    text = out.get("body") or ""
    assert not any(marker in text for marker in INTERNALS), text
    return out["statusCode"], json.loads(text) if text.startswith("{") else {}


def items(dynamodb: Any) -> int:
    return dynamodb.scan(TableName="ChatTable", Select="COUNT")["Count"]


@pytest.mark.parametrize(("body", "why"), [
    (b'{"name": "\xff\xfe"}', "invalid UTF-8"),
    (b"\xc3\x28", "invalid UTF-8"),
])
def test_given_invalid_utf8_body_when_posting_then_400_and_nothing_written(dynamodb, body, why):
    status, reply = call("POST", "/v1/channels", base64_body=body)
    assert status == 400, why
    assert reply["error"]["code"] and reply["error"]["message"]
    assert items(dynamodb) == 0


@pytest.mark.parametrize("raw", ["{", "not json", "[1, 2]", '"a string"', "{" * 5000 + "}" * 5000])
def test_given_malformed_or_deeply_nested_json_when_posting_then_4xx_with_a_code(dynamodb, raw):
    status, reply = call("POST", "/v1/channels", raw_body=raw)
    assert 400 <= status < 500
    assert reply["error"]["code"] and reply["error"]["message"]
    assert items(dynamodb) == 0


def test_given_message_content_over_32kb_when_posting_then_413_naming_the_limit(dynamodb):
    status, reply = call("POST", "/v1/channels", raw_body="{}")
    channel = reply["id"]
    before = items(dynamodb)
    status, reply = call("POST", f"/v1/channels/{channel}/messages",
                         raw_body=json.dumps({"content": "x" * (32 * 1024 + 1)}))
    assert status == 413 and "32768" in reply["error"]["message"]
    assert items(dynamodb) == before


@pytest.mark.parametrize("session_id", ["ses_", "ses_zzzzzzzzzz", "ch_c1s", "%00", "1" * 5000, "ses_!"])
def test_given_malformed_or_out_of_range_ids_then_400_and_never_a_500(dynamodb, session_id):
    status, reply = call("GET", f"/v1/sessions/{session_id}")
    assert status in (400, 404), reply
    assert reply["error"]["code"]


def test_given_mismatched_workspace_header_then_403_and_nothing_written(dynamodb):
    status, reply = call("POST", "/v1/channels", raw_body="{}", headers={"X-Workspace-Id": "other"})
    assert status == 403 and reply["error"]["code"] == "forbidden"
    assert items(dynamodb) == 0


# ---------------------------------------------------------------- request validation (chatkeep.rest.validation)


def test_given_every_route_when_its_request_model_is_compiled_then_each_declared_parameter_is_in_it(dynamodb):
    from chatkeep.rest.app import app
    from chatkeep.rest.validation import RequestPlan

    for route in app._static_routes + app._dynamic_routes:
        declared = route.dependant
        plan = RequestPlan(route)
        sections = plan.model.model_fields
        for location, params in (("path", declared.path_params), ("query", declared.query_params),
                                 ("header", declared.header_params)):
            names = set(sections[location].annotation.model_fields) if params else set()
            assert names == {p.name for p in params}, (route.method, route.path, location)
        assert ("body" in sections) == bool(declared.body_params), (route.method, route.path)


@pytest.mark.parametrize(("key", "why"), [("", "empty"), ("a b", "a space"), ("k" * 256, "over 255 characters")])
def test_given_a_malformed_idempotency_key_when_posting_then_422_naming_the_header_and_nothing_written(
        dynamodb, key, why):
    status, reply = call("POST", "/v1/channels", raw_body="{}", headers={"Idempotency-Key": key})
    assert status == 422, why
    assert reply["error"]["code"] == "validation_error"
    assert reply["error"]["message"].startswith("header.idempotency-key: "), reply
    assert items(dynamodb) == 0


def test_given_a_json_array_body_when_posting_then_422_and_nothing_written(dynamodb):
    # Powertools' own validation read the first element of an array as the body; chatkeep refuses it.
    status, reply = call("POST", "/v1/channels", raw_body='[{"name": "first"}]')
    assert status == 422 and reply["error"]["code"] == "validation_error"
    assert items(dynamodb) == 0


@pytest.mark.parametrize(("query", "where"), [("limit=0", "query.limit"), ("limit=x", "query.limit"),
                                               ("order=sideways", "query.order")])
def test_given_an_invalid_query_parameter_then_422_naming_it(dynamodb, query, where):
    channel = call("POST", "/v1/channels", raw_body="{}")[1]["id"]
    session = call("POST", f"/v1/channels/{channel}/sessions", raw_body="{}")[1]["id"]
    name, value = query.split("=")
    status, reply = call("GET", f"/v1/sessions/{session}/messages", query={name: value})
    assert status == 422 and reply["error"]["message"].startswith(f"{where}: "), reply


def test_given_no_body_when_a_route_needs_one_then_422_naming_the_required_fields(dynamodb):
    channel = call("POST", "/v1/channels", raw_body="{}")[1]["id"]
    before = items(dynamodb)
    for raw in (None, ""):
        status, reply = call("POST", f"/v1/channels/{channel}/messages", raw_body=raw)
        assert status == 422, reply
        assert reply["error"]["message"] == "body: a JSON object is required (required fields: content)", reply
    status, reply = call("POST", f"/v1/channels/{channel}/messages", raw_body="null")
    assert status == 422 and reply["error"]["message"] == "body: must be a JSON object", reply
    assert items(dynamodb) == before


def test_given_no_body_when_every_field_is_optional_then_it_reads_as_an_empty_object(dynamodb):
    # Issue 19: POST /v1/channels/{id}/sessions with no body was a 422 "body: Field required".
    status, channel = call("POST", "/v1/channels", raw_body=None)
    assert status == 201, channel
    status, session = call("POST", f"/v1/channels/{channel['id']}/sessions", raw_body=None)
    assert status == 201 and session["channel_id"] == channel["id"], session
    status, reply = call("POST", f"/v1/channels/{channel['id']}/sessions", raw_body="{")
    assert status == 400 and reply["error"]["code"] == "malformed_json", reply  # malformed JSON stays a 400
    status, reply = call("POST", f"/v1/channels/{channel['id']}/sessions", raw_body="null")
    assert status == 422 and reply["error"]["message"] == "body: must be a JSON object", reply  # null is no object


def test_given_a_json_media_type_with_a_suffix_when_posting_then_it_is_read_as_json(dynamodb):
    status, reply = call("POST", "/v1/channels", raw_body='{"name": "support"}',
                         headers={"content-type": "application/vnd.chatkeep+json; charset=utf-8"})
    assert status == 201 and reply["name"] == "support"


def test_given_json_nested_deeper_than_the_parser_allows_when_posting_then_400_malformed_json(dynamodb):
    status, reply = call("POST", "/v1/channels", raw_body="[" * 100_000 + "]" * 100_000)
    assert status == 400 and reply["error"]["code"] == "malformed_json", reply
    assert items(dynamodb) == 0


def test_given_a_body_flagged_base64_that_is_not_base64_when_posting_then_400_malformed_json(dynamodb):
    from chatkeep.rest.app import handler

    event = http_event("POST", "/v1/channels", claims=claims_for(), raw_body='{"name": "x"}')
    event["isBase64Encoded"] = True  # '{' is not in the base64 alphabet
    out = handler(event, None)
    assert out["statusCode"] == 400 and json.loads(out["body"])["error"]["code"] == "malformed_json", out
    assert items(dynamodb) == 0


# ---------------------------------------------------------------- issue 18: every depth is a 4xx, logs stay small

DEPTHS = (10, 500, 900, 950, 990, 1000, 1100, 2000, 5000, 10_000, 100_000)


def _nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def _nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _assert_small_logs(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    out, err = capsys.readouterr()
    lines = [*out.splitlines(), *err.splitlines(), *(r.getMessage() for r in caplog.records)]
    assert all(len(line) < 4096 for line in lines), max(lines, key=len)[:300]


@pytest.mark.parametrize("depth", DEPTHS)
def test_given_a_body_nested_at_any_depth_when_creating_a_channel_then_4xx_and_no_request_sized_log_line(
        dynamodb, capsys, caplog, depth):
    for raw in (_nested(depth), _nested_object(depth)):
        status, reply = call("POST", "/v1/channels", raw_body=raw)
        assert status in (400, 422), (depth, status, reply)
        assert reply["error"]["code"] in ("malformed_json", "validation_error"), reply
        assert "nested" in reply["error"]["message"] or status == 422, reply
    assert items(dynamodb) == 0
    _assert_small_logs(capsys, caplog)


@pytest.mark.parametrize("depth", DEPTHS)
def test_given_metadata_nested_at_any_depth_when_patching_a_session_or_posting_then_4xx_and_nothing_changes(
        dynamodb, capsys, caplog, depth):
    channel = call("POST", "/v1/channels", raw_body="{}")[1]["id"]
    session = call("POST", f"/v1/channels/{channel}/sessions", raw_body="{}")[1]["id"]
    before = items(dynamodb)
    deep = _nested_object(depth)
    for method, path, raw in (
            ("PATCH", f"/v1/sessions/{session}", f'{{"metadata": {{"k": {deep}}}}}'),
            ("POST", f"/v1/sessions/{session}/messages", f'{{"content": "hi", "metadata": {{"k": {deep}}}}}'),
            ("POST", f"/v1/channels/{channel}/messages", f'{{"content": "hi", "metadata": {_nested(depth)}}}')):
        status, reply = call(method, path, raw_body=raw)
        assert status in (400, 422), (method, path, depth, status, reply)
    assert items(dynamodb) == before
    _assert_small_logs(capsys, caplog)


# ---------------------------------------------------------------- issue 18: integers are stored exactly or refused

EXACT = ("9007199254740993", "-9007199254740993", "99999999999999999999999999999999999999")


@pytest.mark.parametrize("number", EXACT)
def test_given_an_integer_beyond_2_53_in_metadata_then_it_is_stored_and_read_back_exactly(dynamodb, number):
    status, reply = call("POST", "/v1/channels", raw_body=f'{{"metadata": {{"n": {number}}}}}')
    assert status == 201 and reply["metadata"]["n"] == int(number)
    from chatkeep.rest.app import handler

    out = handler(http_event("GET", f"/v1/channels/{reply['id']}", claims=claims_for()), None)
    assert f'"n":{number}' in out["body"], out["body"]


@pytest.mark.parametrize("number", ["123456789012345678901234567890123456789", "-10" + "0" * 40, "1e40", "-1.5e38"])
def test_given_a_number_of_more_than_38_digits_in_metadata_then_422_naming_the_limit_and_nothing_written(
        dynamodb, number):
    channel = call("POST", "/v1/channels", raw_body="{}")[1]["id"]
    session = call("POST", f"/v1/channels/{channel}/sessions", raw_body="{}")[1]["id"]
    before = items(dynamodb)
    metadata = f'"metadata": {{"n": {number}}}'
    for method, path, raw in (("POST", "/v1/channels", f"{{{metadata}}}"),
                              ("PATCH", f"/v1/sessions/{session}", f"{{{metadata}}}"),
                              ("POST", f"/v1/sessions/{session}/messages", f'{{"content": "x", {metadata}}}'),
                              ("POST", f"/v1/channels/{channel}/messages", f'{{"content": "x", {metadata}}}')):
        status, reply = call(method, path, raw_body=raw)
        assert status == 422, (method, path, reply)
        message = reply["error"]["message"]
        assert message.startswith("metadata.n: ") and ("the limit is 38" in message or "at most 38" in message), message
    assert items(dynamodb) == before
