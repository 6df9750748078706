"""chatkeep_local.websocket_api / connections_api: the local API Gateway WebSocket API, driven by the `websockets`
client and the real boto3 `apigatewaymanagementapi` client, with small test handlers."""

from __future__ import annotations

import json
import queue
from datetime import datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from botocore.exceptions import ClientError
from chatkeep_local import websocket_events as events
from chatkeep_local.websocket_api import WebSocketApi
from chatkeep_local.websocket_events import WebSocketLimits
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

WAIT = 10  # seconds to wait for something the emulator does on another thread (never a timing assertion)

# The keys of events recorded from real WebSocket APIs (Powertools' test events apiGatewayWebSocketApi*.json).
REAL_CONNECT_CONTEXT = {
    "routeKey", "eventType", "extendedRequestId", "requestTime", "messageDirection", "stage", "connectedAt",
    "requestTimeEpoch", "identity", "requestId", "domainName", "connectionId", "apiId",
}
REAL_MESSAGE_CONTEXT = REAL_CONNECT_CONTEXT | {"messageId"}
REAL_DISCONNECT_CONTEXT = REAL_CONNECT_CONTEXT | {"disconnectStatusCode", "disconnectReason"}


class Routes:
    """Test handlers: every event lands in a queue per route; the replies are set per test."""

    def __init__(self) -> None:
        self.events: dict[str, queue.Queue[dict[str, Any]]] = {
            key: queue.Queue() for key in ("$connect", "$default", "$disconnect", "sendmessage")
        }
        self.connect_result: Any = {"statusCode": 200}
        self.message_result: Any = {"statusCode": 200}
        self.on_message: Any = None

    def connect(self, event: dict[str, Any], context: Any) -> Any:
        self.events["$connect"].put(event)
        if isinstance(self.connect_result, Exception):
            raise self.connect_result
        return self.connect_result

    def message(self, event: dict[str, Any], context: Any) -> Any:
        self.events[event["requestContext"]["routeKey"]].put(event)
        if self.on_message is not None:
            self.on_message(event)
        return self.message_result

    def disconnect(self, event: dict[str, Any], context: Any) -> Any:
        self.events["$disconnect"].put(event)
        return {"statusCode": 200}

    def next(self, route: str) -> dict[str, Any]:
        return self.events[route].get(timeout=WAIT)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def routes() -> Routes:
    return Routes()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_api(routes, clock):
    started: list[WebSocketApi] = []

    def make(**options: Any) -> WebSocketApi:
        table = options.pop("routes", None) or {
            "$connect": routes.connect, "$default": routes.message, "$disconnect": routes.disconnect,
        }
        options.setdefault("clock", clock)
        options.setdefault("sweep_interval_s", 3600)  # tests sweep explicitly
        api = WebSocketApi(table, stage="prod", **options).start()
        started.append(api)
        return api

    yield make
    for api in started:
        api.stop()


@pytest.fixture
def api(make_api) -> WebSocketApi:
    return make_api()


def management(api: WebSocketApi):
    return boto3.client("apigatewaymanagementapi", endpoint_url=api.management_endpoint, region_name="us-east-1")


def connection_id_of(routes: Routes) -> str:
    return routes.next("$connect")["requestContext"]["connectionId"]


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


# ------------------------------------------------------------------------------------------- $connect


def test_given_the_connect_handler_returns_the_subprotocol_when_a_client_offers_it_then_it_is_negotiated(api, routes):
    routes.connect_result = {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "graphql-transport-ws"}}
    with connect(api.url, subprotocols=["graphql-transport-ws"]) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
    event = routes.next("$connect")
    assert event["headers"]["Sec-WebSocket-Protocol"] == "graphql-transport-ws"


def test_given_the_connect_handler_returns_no_subprotocol_then_none_is_echoed_as_in_api_gateway(api, routes):
    routes.connect_result = {"statusCode": 200}
    with connect(api.url, subprotocols=["graphql-transport-ws"]) as ws:
        assert ws.subprotocol is None


def test_connect_handler_returning_nothing_accepts_the_connection(api, routes):
    routes.connect_result = None
    with connect(api.url) as ws:
        ws.send("ping")
        assert routes.next("$default")["body"] == "ping"


@pytest.mark.parametrize("status", [401, 403, 429])
def test_given_a_non_2xx_connect_status_then_the_upgrade_is_refused_with_it_and_no_disconnect_follows(
    api, routes, status
):
    routes.connect_result = {"statusCode": status, "body": "no"}
    with pytest.raises(InvalidStatus) as refused:
        connect(api.url)
    assert refused.value.response.status_code == status
    rejected = connection_id_of(routes)

    routes.connect_result = {"statusCode": 200}
    with connect(api.url):
        accepted = connection_id_of(routes)
    assert routes.next("$disconnect")["requestContext"]["connectionId"] == accepted != rejected


def test_given_the_connect_handler_raises_then_the_upgrade_gets_500(api, routes):
    routes.connect_result = RuntimeError("boom")
    with pytest.raises(InvalidStatus) as refused:
        connect(api.url)
    assert refused.value.response.status_code == 500
    assert json.loads(refused.value.response.body) == {"message": "Internal server error"}


def test_a_path_other_than_the_stage_is_forbidden(api, routes):
    with pytest.raises(InvalidStatus) as refused:
        connect(api.url.rsplit("/", 1)[0] + "/other")
    assert refused.value.response.status_code == 403
    assert routes.events["$connect"].empty()


def test_connect_event_has_the_shape_api_gateway_sends(api, routes):
    with connect(api.url + "?token=a&token=b&x=1", additional_headers={"X-Custom": "yes"}):
        event = routes.next("$connect")
    APIGatewayWebSocketConnectEventModel.model_validate(event)
    context = event["requestContext"]
    assert set(context) == REAL_CONNECT_CONTEXT
    assert (context["routeKey"], context["eventType"], context["messageDirection"]) == ("$connect", "CONNECT", "IN")
    assert context["stage"] == "prod" and context["identity"] == {"sourceIp": "127.0.0.1"}
    assert len(context["connectionId"]) == 16 and context["connectionId"].endswith("=")
    assert context["connectedAt"] == context["requestTimeEpoch"] == 1_750_000_000_000
    assert context["requestTime"] == "15/Jun/2025:15:06:40 +0000"
    assert event["headers"]["X-Custom"] == "yes" and event["multiValueHeaders"]["X-Custom"] == ["yes"]
    assert {"X-Forwarded-For", "X-Forwarded-Proto", "X-Amzn-Trace-Id", "Sec-WebSocket-Key"} <= set(event["headers"])
    assert not {"Upgrade", "Connection"} & set(event["headers"])
    assert event["queryStringParameters"] == {"token": "b", "x": "1"}
    assert event["multiValueQueryStringParameters"] == {"token": ["a", "b"], "x": ["1"]}
    assert event["isBase64Encoded"] is False and "body" not in event


def test_connect_event_without_query_string_has_no_query_keys(api, routes):
    with connect(api.url):
        event = routes.next("$connect")
    assert "queryStringParameters" not in event and "multiValueQueryStringParameters" not in event


def test_posting_to_a_connection_during_its_own_connect_is_gone(make_api, routes):
    outcome: list[str] = []
    endpoint: list[str] = []

    def connect_and_post(event: dict[str, Any], context: Any) -> dict[str, Any]:
        client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint[0], region_name="us-east-1")
        try:
            client.post_to_connection(ConnectionId=event["requestContext"]["connectionId"], Data=b"too early")
        except ClientError as exc:
            outcome.append(exc.response["Error"]["Code"])
        return {"statusCode": 200}

    api = make_api(routes={"$connect": connect_and_post})
    endpoint.append(api.management_endpoint)
    with connect(api.url):
        pass
    assert outcome == ["GoneException"]


# --------------------------------------------------------------------------------------------- messages


def test_message_event_has_the_shape_api_gateway_sends(api, routes):
    with connect(api.url) as ws:
        connection_id = connection_id_of(routes)
        ws.send('{"type":"connection_init"}')
        event = routes.next("$default")
    APIGatewayWebSocketMessageEventModel.model_validate(event)
    context = event["requestContext"]
    assert set(context) == REAL_MESSAGE_CONTEXT
    assert (context["routeKey"], context["eventType"]) == ("$default", "MESSAGE")
    assert context["connectionId"] == connection_id
    assert set(event) == {"requestContext", "body", "isBase64Encoded"}
    assert (event["body"], event["isBase64Encoded"]) == ('{"type":"connection_init"}', False)


def test_a_binary_message_arrives_base64_encoded(api, routes):
    with connect(api.url) as ws:
        ws.send(b"\x00\xff")
        event = routes.next("$default")
    assert (event["body"], event["isBase64Encoded"]) == ("AP8=", True)


def test_given_a_route_for_the_action_then_the_selection_expression_picks_it(make_api, routes):
    api = make_api(routes={"$default": routes.message, "sendmessage": routes.message})
    with connect(api.url) as ws:
        ws.send('{"action": "sendmessage"}')
        ws.send('{"action": "other"}')
        ws.send("not json")
        assert routes.next("sendmessage")["requestContext"]["routeKey"] == "sendmessage"
        assert {routes.next("$default")["body"] for _ in range(2)} == {'{"action": "other"}', "not json"}


def test_given_no_route_matches_then_the_client_gets_api_gateways_forbidden_message(make_api, routes):
    api = make_api(routes={"$connect": routes.connect})
    with connect(api.url) as ws:
        connection_id = connection_id_of(routes)
        ws.send("hello")
        reply = ws.recv(timeout=WAIT)
    assert reply.startswith(f'{{"message": "Forbidden", "connectionId":"{connection_id}", "requestId":"')


def test_given_the_message_handler_raises_then_the_client_gets_an_error_message_and_stays_connected(api, routes):
    routes.on_message = lambda event: (_ for _ in ()).throw(RuntimeError("boom")) if event["body"] == "bad" else None
    with connect(api.url) as ws:
        connection_id = connection_id_of(routes)
        ws.send("bad")
        reply = ws.recv(timeout=WAIT)
        request_id = routes.next("$default")["requestContext"]["requestId"]
        assert reply == (
            f'{{"message": "Internal server error", "connectionId":"{connection_id}", "requestId":"{request_id}"}}'
        )
        ws.send("good")
        assert routes.next("$default")["body"] == "good"


def test_the_handlers_body_goes_back_only_when_the_route_has_a_route_response(make_api, routes):
    routes.message_result = {"statusCode": 200, "body": "reply"}
    one_way = make_api()
    with connect(one_way.url) as ws:
        ws.send("first")
        routes.next("$default")
        ws.send("second")
        routes.next("$default")
        with pytest.raises(TimeoutError):  # a negative check: nothing comes back within half a second
            ws.recv(timeout=0.5)
    two_way = make_api(route_responses=["$default"])
    with connect(two_way.url) as ws:
        ws.send("first")
        assert ws.recv(timeout=WAIT) == "reply"


# ----------------------------------------------------------------------------------- @connections API


def test_post_to_connection_through_boto3_reaches_the_client(api, routes):
    with connect(api.url) as ws:
        connection_id = connection_id_of(routes)
        management(api).post_to_connection(ConnectionId=connection_id, Data=b'{"type":"next"}')
        assert ws.recv(timeout=WAIT) == '{"type":"next"}'
    assert [(p.connection_id, p.data, p.status) for p in api.pushes] == [(connection_id, b'{"type":"next"}', 200)]


def test_a_handler_pushes_back_to_its_caller_while_handling_a_message(api, routes):
    def echo(event: dict[str, Any]) -> None:
        context = event["requestContext"]
        management(api).post_to_connection(ConnectionId=context["connectionId"], Data=b"echo " + event["body"].encode())

    routes.on_message = echo
    with connect(api.url) as ws:
        ws.send("hi")
        assert ws.recv(timeout=WAIT) == "echo hi"


def test_a_message_over_32_kb_is_delivered_in_frames_of_at_most_32_kb(api, routes):
    payload = ("é" * 60_000).encode()  # 120,000 bytes of two-byte characters
    with connect(api.url) as ws:
        management(api).post_to_connection(ConnectionId=connection_id_of(routes), Data=payload)
        fragments = list(ws.recv_streaming())
    assert "".join(fragments).encode() == payload
    frames = [f for f in fragments if f]  # websockets ends a fragmented message with an empty final frame
    assert len(frames) == 4 and all(len(f.encode()) <= 32 * 1024 for f in frames)


def test_post_over_128_kb_is_payload_too_large_and_128_kb_exactly_is_delivered(api, routes):
    with connect(api.url) as ws:
        connection_id = connection_id_of(routes)
        client = management(api)
        with pytest.raises(ClientError) as too_large:
            client.post_to_connection(ConnectionId=connection_id, Data=b"x" * (128 * 1024 + 1))
        assert error_of(too_large) == ("PayloadTooLargeException", 413)
        client.post_to_connection(ConnectionId=connection_id, Data=b"y" * (128 * 1024))
        assert ws.recv(timeout=WAIT) == "y" * (128 * 1024)
    assert [p.status for p in api.pushes] == [413, 200]


def test_post_to_a_closed_or_unknown_connection_is_gone(api, routes):
    with connect(api.url):
        connection_id = connection_id_of(routes)
    routes.next("$disconnect")
    client = management(api)
    for target in (connection_id, "AAAAAAAAAAAAAAA="):
        with pytest.raises(ClientError) as gone:
            client.post_to_connection(ConnectionId=target, Data=b"late")
        assert error_of(gone) == ("GoneException", 410)
        with pytest.raises(ClientError) as gone:
            client.get_connection(ConnectionId=target)
        assert error_of(gone) == ("GoneException", 410)
        with pytest.raises(ClientError) as gone:
            client.delete_connection(ConnectionId=target)
        assert error_of(gone) == ("GoneException", 410)
    assert [p.status for p in api.pushes] == [410, 410]


def test_get_connection_describes_it(api, routes, clock):
    with connect(api.url, user_agent_header="chatkeep-test/1") as ws:
        connection_id = connection_id_of(routes)
        clock.now += 30
        ws.send("activity")
        routes.next("$default")
        found = management(api).get_connection(ConnectionId=connection_id)
    assert found["ConnectedAt"] == datetime.fromtimestamp(1_750_000_000, tz=found["ConnectedAt"].tzinfo)
    assert found["LastActiveAt"] == datetime.fromtimestamp(1_750_000_030, tz=found["LastActiveAt"].tzinfo)
    assert found["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "chatkeep-test/1"}


def test_delete_connection_closes_the_socket_and_triggers_disconnect(api, routes):
    with connect(api.url) as ws:
        connection_id = connection_id_of(routes)
        management(api).delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
    assert closed.value.rcvd.code == 1000
    event = routes.next("$disconnect")
    context = event["requestContext"]
    assert (context["connectionId"], context["disconnectStatusCode"], context["disconnectReason"]) == (
        connection_id, 1000, "Connection Closed Normally",
    )
    with pytest.raises(ClientError) as gone:
        management(api).post_to_connection(ConnectionId=connection_id, Data=b"late")
    assert error_of(gone) == ("GoneException", 410)


def test_a_wrong_stage_on_the_management_endpoint_is_forbidden(api):
    other = boto3.client("apigatewaymanagementapi", region_name="us-east-1",
                         endpoint_url=api.management_endpoint.rsplit("/", 1)[0] + "/other")
    with pytest.raises(ClientError) as forbidden:
        other.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")
    assert error_of(forbidden) == ("ForbiddenException", 403)


# ---------------------------------------------------------------------------------------- $disconnect


def test_disconnect_event_has_the_shape_api_gateway_sends_with_the_clients_close_code(api, routes):
    with connect(api.url) as ws:
        connection_id = connection_id_of(routes)
        ws.close(4000, "bye")
    event = routes.next("$disconnect")
    APIGatewayWebSocketDisconnectEventModel.model_validate(event)
    context = event["requestContext"]
    assert set(context) == REAL_DISCONNECT_CONTEXT
    assert (context["routeKey"], context["eventType"], context["connectionId"]) == (
        "$disconnect", "DISCONNECT", connection_id,
    )
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (4000, "bye")
    assert set(event["headers"]) == {"Host", "x-api-key", "X-Forwarded-For", "x-restapi"}


def test_a_client_closing_normally_is_reported_as_1000(api, routes):
    with connect(api.url):
        pass
    context = routes.next("$disconnect")["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (1000, "Connection Closed Normally")


def test_a_dropped_tcp_connection_is_reported_as_1006(api, routes):
    ws = connect(api.url)
    connection_id_of(routes)
    ws.socket.close()  # no close frame
    context = routes.next("$disconnect")["requestContext"]
    assert context["disconnectStatusCode"] == 1006


def test_an_incoming_frame_over_32_kb_closes_the_connection_with_1009(api, routes):
    with connect(api.url) as ws:
        ws.send("z" * (32 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
    assert closed.value.rcvd.code == 1009
    assert routes.next("$disconnect")["requestContext"]["disconnectStatusCode"] == 1009
    assert routes.events["$default"].empty()


def test_an_incoming_message_of_32_kb_in_one_frame_is_accepted(api, routes):
    with connect(api.url) as ws:
        ws.send("z" * (32 * 1024))
        assert len(routes.next("$default")["body"]) == 32 * 1024


# ------------------------------------------------------------------------------------------- timeouts


def test_given_no_message_either_way_for_the_idle_timeout_then_the_connection_closes_with_1001(api, routes, clock):
    with connect(api.url) as ws:
        connection_id = connection_id_of(routes)
        clock.now += 599
        assert api.sweep_expired() == []
        clock.now += 1
        assert api.sweep_expired() == [connection_id]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
    assert closed.value.rcvd.code == 1001
    context = routes.next("$disconnect")["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (1001, "Going away")


def test_messages_either_way_keep_a_connection_from_idling_out(api, routes, clock):
    with connect(api.url) as ws:
        connection_id = connection_id_of(routes)
        clock.now += 500
        ws.send("from the client")
        routes.next("$default")
        clock.now += 500
        management(api).post_to_connection(ConnectionId=connection_id, Data=b"from a function")
        ws.recv(timeout=WAIT)
        clock.now += 500
        assert api.sweep_expired() == []
        assert api.connection_ids() == [connection_id]


def test_an_active_connection_still_closes_at_the_maximum_duration(make_api, routes, clock):
    api = make_api(limits=WebSocketLimits(idle_timeout_s=600, max_duration_s=7200))
    with connect(api.url) as ws:
        connection_id = connection_id_of(routes)
        for _ in range(14):  # 7,000 s of activity every 500 s
            clock.now += 500
            ws.send("keepalive")
            routes.next("$default")
        assert api.sweep_expired() == []
        clock.now += 200
        assert api.sweep_expired() == [connection_id]


def test_stopping_the_api_closes_connections_with_1001_and_invokes_disconnect(make_api, routes):
    api = make_api()
    ws = connect(api.url)
    connection_id = connection_id_of(routes)
    api.stop()
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=WAIT)
    assert closed.value.rcvd.code == 1001
    assert routes.next("$disconnect")["requestContext"]["connectionId"] == connection_id


# --------------------------------------------------------------------------------- event helpers, pure


@pytest.mark.parametrize("char", ["a", "é", "€", "🙂"])  # 1, 2, 3 and 4 UTF-8 bytes
def test_utf8_fragments_never_split_a_character_and_never_exceed_the_frame(char):
    text = char * 50_001
    pieces = events.utf8_fragments(text, 32 * 1024)
    assert "".join(pieces) == text
    assert all(0 < len(p.encode()) <= 32 * 1024 for p in pieces)
    assert events.utf8_fragments("short", 32 * 1024) == ["short"]


def test_select_route_follows_a_nested_selection_expression():
    keys = ["$default", "join", "leave"]
    assert events.select_route("$request.body.op.name", '{"op": {"name": "join"}}', keys) == "join"
    assert events.select_route("$request.body.op.name", '{"op": "join"}', keys) == "$default"
    assert events.select_route("$request.body.action", '{"action": "unknown"}', keys) == "$default"
    assert events.select_route("$request.body.action", b'{"action": "join"}', keys) == "$default"  # binary
    assert events.select_route("$request.body.action", '{"action": "join"}', ["$default"]) == "$default"


def test_connect_outcome_reads_status_subprotocol_and_body():
    assert events.connect_outcome(None) == (200, None, b"")
    assert events.connect_outcome({"statusCode": "401", "body": "no"}) == (401, None, b"no")
    assert events.connect_outcome(
        {"statusCode": 200, "multiValueHeaders": {"sec-websocket-protocol": ["graphql-transport-ws"]}}
    ) == (200, "graphql-transport-ws", b"")
    with pytest.raises(events.IntegrationError):
        events.connect_outcome("OK")
    with pytest.raises(events.IntegrationError):
        events.connect_outcome({"statusCode": "teapot"})
