"""REST layer units: id patterns agree with chatkeep.ids, cursors round-trip, the error map, the OpenAPI
document declares every status with the error body, and every route of template.yaml is served."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from chatkeep import ids
from chatkeep.rest import errors
from chatkeep.rest.schemas import CURSOR_PATTERN, SESSION_ID_PATTERN, id_pattern

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("number", [1, 2, 31, 32, 1023, 32**6 - 1, 32**6, 2**31 - 2, ids.MAX_ID])
def test_id_pattern_accepts_every_encoded_id(number: int) -> None:
    for kind in ids.Kind:
        assert re.match(id_pattern(kind.value), ids.encode(kind, number))


def test_id_pattern_accepts_random_ids() -> None:
    for _ in range(2000):
        assert re.match(SESSION_ID_PATTERN, ids.encode(ids.Kind.SESSION, ids.new_id()))


@pytest.mark.parametrize("text", ["ses_0", "ses_", "ses_2000000", "ses_1zzzzzzz", "ses_abc!", "ch_c1s", "SES_C1S",
                                  "ses_ilo", "ses_c1s ", "123"])
def test_id_pattern_refuses_what_decode_refuses_or_we_never_emit(text: str) -> None:
    assert not re.match(SESSION_ID_PATTERN, text)


def test_anything_matching_the_pattern_decodes() -> None:
    for text in ("ses_1", "ses_zzzzzz", "ses_1zzzzzz", "ses_10000000"[:11]):
        if re.match(SESSION_ID_PATTERN, text):
            assert 0 < ids.decode(ids.Kind.SESSION, text) <= ids.MAX_ID


def test_cursor_round_trip() -> None:
    from chatkeep.repository import keys
    from chatkeep.repository.cursor import decode_cursor, encode_cursor, from_rest_cursor, to_rest_cursor

    sid = 123456789
    repo_cursor = encode_cursor(keys.activity_sk("2026-03-19T12:00:00.123Z", sid), sid)
    rest = to_rest_cursor(repo_cursor)
    assert rest == f"20260319T120000123Z.{ids.encode(ids.Kind.SESSION, sid)[4:]}"
    assert re.match(CURSOR_PATTERN, rest)
    assert decode_cursor(from_rest_cursor(rest)) == decode_cursor(repo_cursor)
    assert to_rest_cursor(None) is None


def test_validation_errors_map_to_400_or_422() -> None:
    reply = errors.from_validation([{"type": "json_invalid", "loc": ("body", 3), "msg": "JSON decode error"}])
    assert reply.status_code == 400 and json.loads(reply.body)["error"]["code"] == "malformed_json"
    reply = errors.from_validation([{"type": "string_pattern_mismatch", "loc": ("path", "session_id"), "msg": "x"}])
    assert reply.status_code == 400 and json.loads(reply.body)["error"]["code"] == "bad_request"
    reply = errors.from_validation([{"type": "missing", "loc": ("body", "content"), "msg": "Field required"}])
    body = json.loads(reply.body)
    assert reply.status_code == 422 and body == {"error": {"code": "validation_error",
                                                           "message": "content: Field required"}}


def test_domain_errors_keep_status_and_code() -> None:
    from chatkeep.errors import PayloadTooLarge, ServiceUnavailable, SessionExpired

    for exc, status, code in ((SessionExpired("gone"), 409, "session_expired"),
                              (PayloadTooLarge("big"), 413, "payload_too_large"),
                              (ServiceUnavailable("busy"), 503, "service_unavailable")):
        reply = errors.from_domain(exc)
        assert reply.status_code == status and json.loads(reply.body)["error"]["code"] == code
    assert errors.from_domain(ServiceUnavailable("busy")).headers.get("Retry-After") == "1"


def test_openapi_declares_every_status_with_the_error_body() -> None:
    from chatkeep.rest.app import openapi_json

    document = json.loads(openapi_json())
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert document["security"] == [{"bearerAuth": []}]
    operations = [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]
    assert len(operations) == 18
    for path, method, op in operations:
        statuses = set(op["responses"])
        assert {"400", "401", "403", "404", "422", "429", "500", "503"} <= statuses, (method, path)
        assert "HTTPValidationError" not in json.dumps(op["responses"]), (method, path)
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert "ErrorBody" in json.dumps(response["content"]), (method, path, status)
        if method == "post":
            headers = [p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"]
            assert headers == ["idempotency-key"], (method, path)
            assert "409" in statuses
        if "requestBody" in op:
            assert {"413", "415"} <= statuses, (method, path)
    assert "content" not in document["paths"]["/v1/sessions/{session_id}"]["delete"]["responses"]["204"]


def test_every_template_route_is_served() -> None:
    from chatkeep.rest.app import app, openapi_json
    from chatkeep_local.template import load_template, routes

    served = {(op.upper(), path) for path, ops in json.loads(openapi_json())["paths"].items() for op in ops}
    served |= {("GET", "/openapi.json"), ("GET", "/docs")}
    declared = {(r.method.upper(), r.path) for r in routes(load_template(ROOT / "template.yaml"))
                if not r.path.startswith("/graphql")}
    assert declared == served
    assert app is not None


def test_events_exist_for_every_route() -> None:
    events = {json.loads(p.read_text())["routeKey"] for p in (ROOT / "events").glob("rest_*.json")}
    from chatkeep_local.template import load_template, routes

    declared = {f"{r.method.upper()} {r.path}" for r in routes(load_template(ROOT / "template.yaml"))
                if not r.path.startswith("/graphql")}
    assert declared <= events
