"""`chatkeep dev` with a template that declares a WebSocket API serves it: the banner and /_local/health name the
socket and the @connections endpoint, and a function pushes back through that endpoint (its environment's
WEBSOCKET_MANAGEMENT_ENDPOINT, replacing the AWS URL the template declares)."""

from __future__ import annotations

import boto3
import pytest
from chatkeep_local.testing import LocalApiProcess, write_sample_app
from chatkeep_local.websocket_sample import write_websocket_sample_app
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def dev_with_websocket(tmp_path_factory):
    root = tmp_path_factory.mktemp("websocket-app")
    api = LocalApiProcess(write_websocket_sample_app(root), log_path=root / "chatkeep-dev.log",
                          extra_args=["--ws-port", "0", "--no-stream"])
    api.start()
    try:
        yield api
    finally:
        api.stop()


def test_chatkeep_dev_serves_the_templates_websocket_api(dev_with_websocket):
    websocket = dev_with_websocket.health()["websocket"]
    assert websocket["enabled"] is True
    assert websocket["url"].startswith("ws://127.0.0.1:") and websocket["url"].endswith("/live")
    assert websocket["routes"] == ["$connect", "$default", "$disconnect", "audit"]
    assert f"websocket: {websocket['url']}" in dev_with_websocket.log_path.read_text(encoding="utf-8")

    with connect(websocket["url"], subprotocols=["graphql-transport-ws"]) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        ws.send('{"type": "ping"}')
        assert ws.recv(timeout=20) == 'pushed {"type": "ping"}'
        assert dev_with_websocket.health()["websocket"]["connections"] == 1

    client = boto3.client("apigatewaymanagementapi", endpoint_url=websocket["management_endpoint"],
                          region_name="us-east-1")
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId="AAAAAAAAAAAAAAA=")


def test_without_a_websocket_api_chatkeep_dev_reports_it_disabled(tmp_path):
    api = LocalApiProcess(write_sample_app(tmp_path), log_path=tmp_path / "chatkeep-dev.log",
                          extra_args=["--no-stream"])
    api.start()
    try:
        assert api.health()["websocket"] == {"enabled": False}
    finally:
        api.stop()


def test_given_the_repositorys_template_then_chatkeep_dev_serves_its_live_updates_api_at_ws(local_api):
    websocket = local_api.health()["websocket"]
    assert websocket["enabled"] is True and websocket["url"].endswith("/ws")
    assert websocket["routes"] == ["$connect", "$default", "$disconnect"]
