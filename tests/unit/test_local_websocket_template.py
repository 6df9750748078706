"""chatkeep_local.websocket_template / websocket_dev: a template's WebSocket API, read and served with its
functions' handlers (a tiny test template; chatkeep's template.yaml declares none yet)."""

from __future__ import annotations

import os

import pytest
from chatkeep_local.lambda_runtime import FunctionInvoker
from chatkeep_local.template import functions, load_template
from chatkeep_local.websocket_dev import MANAGEMENT_ENDPOINT_ENV, from_template, start_for_dev
from chatkeep_local.websocket_sample import WEBSOCKET_SAMPLE_TEMPLATE, write_websocket_sample_app
from chatkeep_local.websocket_template import DEFAULT_STAGE, websocket_apis
from websockets.sync.client import connect


@pytest.fixture
def template(tmp_path):
    return load_template(write_websocket_sample_app(tmp_path))


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
    text = WEBSOCKET_SAMPLE_TEMPLATE.replace("Type: AWS::ApiGatewayV2::Stage", "Type: AWS::ApiGatewayV2::Deployment")
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
