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
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    from chatkeep.rest.app import handler

    event = http_event(method, path, claims=claims_for(), raw_body=raw_body, headers=headers)
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
