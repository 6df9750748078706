"""The local runtime over HTTP: a throwaway sample app (API Gateway/Lambda/Streams/TTL behaviour), then
the real template.yaml (`local_api`)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import boto3
import pytest
from chatkeep_local.testing import LocalApiProcess, write_sample_app

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sample_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample-app")
    template = write_sample_app(root)
    stream_log = root / "stream.log"
    events = root / "events"
    api = LocalApiProcess(
        template,
        log_path=root / "dev.log",
        env={"STREAM_LOG": str(stream_log)},
        extra_args=["--record-events", str(events), "--ttl-interval", "3600"],
    )
    api.stream_log = stream_log  # type: ignore[attr-defined]
    api.events_dir = events  # type: ignore[attr-defined]
    api.start()
    try:
        yield api
    finally:
        api.stop()


def echo(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["event"]


# --------------------------------------------------------------------------------- API Gateway


def test_missing_token_is_401(sample_api):
    resp = sample_api.request("POST", "/graphql", json={})
    assert resp.status_code == 401
    assert resp.json()["message"] == "Unauthorized"  # API Gateway's body; the reason is the local runtime's
    assert resp.json()["reason"].startswith("missing token: send 'Authorization: Bearer <token>'")
    assert "www-authenticate" not in resp.headers


def test_bad_tokens_are_401_with_reason(sample_api):
    for token in (
        sample_api.token("u", "w", audience="other"),
        sample_api.token("u", "w", ttl=-10),
        sample_api.token("u", "w", secret="not-the-dev-secret-not-the-dev-secret"),
        "garbage",
    ):
        resp = sample_api.request("POST", "/graphql", token=token, json={})
        assert resp.status_code == 401, token
        assert resp.json()["message"] == "Unauthorized"
        description = resp.headers["www-authenticate"].split('error_description="')[1].rstrip('"')
        assert resp.json()["reason"].startswith(description), (resp.json(), description)
        assert 'error="invalid_token"' in resp.headers["www-authenticate"]


@pytest.mark.parametrize("make", [False, True], ids=["chatkeep-dev", "make-dev"])
def test_given_a_busy_port_then_one_line_naming_a_free_port_and_nothing_started(tmp_path, make):
    import os
    import socket
    import subprocess
    import sys

    template = write_sample_app(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "MAKELEVEL"} | ({"MAKELEVEL": "1"} if make else {})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "local"), str(REPO / "layers" / "common")])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "chatkeep_local.cli", "dev", "--port", str(port),
                               "--template", str(template)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)

    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()  # no traceback, no table set-up before it
    free = int(line.rsplit("PORT=" if make else "--port ", 1)[1])
    assert line.startswith(f"chatkeep dev: port {port} on 127.0.0.1 is in use") and free > port
    assert line.endswith(f"make dev PORT={free}" if make else f"chatkeep dev --port {free}")


def test_given_a_busy_websocket_port_then_one_line_naming_the_option_and_a_free_port(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from chatkeep_local.testing import free_port
    from chatkeep_local.websocket_sample import write_websocket_sample_app

    template = write_websocket_sample_app(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "MAKELEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "local"), str(REPO / "layers" / "common")])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ws_port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "chatkeep_local.cli", "dev", "--port", str(free_port()),
                               "--ws-port", str(ws_port), "--template", str(template)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)

    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"chatkeep dev: port {ws_port} on 127.0.0.1 is in use (the WebSocket API's port)")
    assert " is free: chatkeep dev --ws-port " in line


def test_unknown_route_is_404(sample_api):
    for method, path in (("GET", "/nope"), ("GET", "/graphql"), ("POST", "/v1/sessions/x")):
        resp = sample_api.request(method, path, token=sample_api.token("u", "w"))
        assert resp.status_code == 404
        assert resp.json() == {"message": "Not Found"}


def test_health(sample_api):
    health = sample_api.health()
    assert health["status"] == "ok"
    assert "POST /graphql" in health["routes"]
    assert health["stream"]["enabled"] and health["stream"]["alive"]


def test_event_through_http(sample_api):
    token = sample_api.token("u1", "w1", name="Ann", scope="a b", groups=["x", "y"])
    resp = sample_api.request(
        "GET", "/v1/channels/ch_1/sessions?limit=5&status=active&status=closed", token=token,
        headers={"Cookie": "k=v", "X-Workspace-Id": "w1"},
    )
    event = echo(resp)
    assert resp.headers["x-fn"] == "RestApiFunction"
    assert event["routeKey"] == "GET /v1/channels/{channel_id}/sessions"
    assert event["pathParameters"] == {"channel_id": "ch_1"}
    assert event["queryStringParameters"] == {"limit": "5", "status": "active,closed"}
    assert event["cookies"] == ["k=v"]
    assert event["headers"]["x-workspace-id"] == "w1"
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == "u1" and claims["workspace_id"] == "w1" and claims["given_name"] == "Ann"
    assert claims["scope"] == "a b" and claims["groups"] == "[x y]"
    assert isinstance(claims["exp"], str) and claims["exp"].isdigit()
    assert "apigw-requestid" in resp.headers


def test_route_without_authorizer(sample_api):
    event = echo(sample_api.request("GET", "/docs"))
    assert "authorizer" not in event["requestContext"]
    # a token is not required, and not verified, there
    echo(sample_api.request("GET", "/openapi.json", token="garbage"))


def test_route_scopes_403(sample_api):
    resp = sample_api.request("POST", "/v1/agents", token=sample_api.token("u", "w"), json={})
    assert resp.status_code == 403 and resp.json()["message"] == "Forbidden"
    assert resp.json()["reason"].endswith("this route needs one of: chatkeep/service")
    ok = sample_api.request("POST", "/v1/agents", token=sample_api.token("s", "w", scope="chatkeep/service"), json={})
    assert echo(ok)["requestContext"]["authorizer"]["jwt"]["scopes"] == ["chatkeep/service"]


def test_cors(sample_api):
    pre = sample_api.request(
        "OPTIONS", "/graphql",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"},
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "POST" in pre.headers["access-control-allow-methods"]
    resp = sample_api.request("POST", "/graphql", token=sample_api.token("u", "w"), json={},
                              headers={"Origin": "http://localhost:5173"})
    assert resp.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_function_errors_are_500_without_details(sample_api):
    token = sample_api.token("u", "w")
    for path in ("/v1/files/boom", "/v1/files/bad"):
        resp = sample_api.request("GET", path, token=token)
        assert resp.status_code == 500
        assert resp.json() == {"message": "Internal Server Error"}
    assert "RuntimeError: boom" in sample_api.log_path.read_text()


def test_response_mapping(sample_api):
    token = sample_api.token("u", "w")
    plain = sample_api.request("GET", "/v1/files/plain", token=token)
    assert plain.status_code == 200 and plain.json() == {"hello": "world"}
    assert plain.headers["content-type"] == "application/json"
    binary = sample_api.request("PUT", "/v1/files/binary", token=token)
    assert binary.content == b"\x00\x01\x02"
    assert binary.raw.headers.getlist("set-cookie") == ["a=1; Path=/", "b=2"]
    upload = echo(sample_api.request("POST", "/v1/files/x", token=token, data=b"\x00\xff",
                                     headers={"Content-Type": "application/octet-stream"}))
    assert upload["isBase64Encoded"] is True and upload["body"] == "AP8="


def test_payload_limit(sample_api):
    resp = sample_api.request("POST", "/v1/files/x", token=sample_api.token("u", "w"),
                              data=b"x" * (10 * 1024 * 1024 + 1))
    assert resp.status_code == 413


def test_request_log_has_no_query_values_or_tokens(sample_api):
    token = sample_api.token("u", "w")
    sample_api.request("GET", "/v1/sessions/s1?secret=hunter2", token=token)
    deadline = time.monotonic() + 5
    while "GET /v1/sessions/s1 200" not in (log := sample_api.log_path.read_text()):  # logged after sending
        assert time.monotonic() < deadline, "no request log line"
        time.sleep(0.05)
    assert "hunter2" not in log and token not in log


def test_recorded_events_hide_the_token(sample_api):
    token = sample_api.token("u", "w")
    sample_api.request("POST", "/graphql", token=token, json={"query": "{x}"})
    files = sorted(sample_api.events_dir.glob("*-api-GraphqlApiFunction-POST_graphql.json"))
    assert files
    event = json.loads(files[-1].read_text())
    assert event["headers"]["authorization"] == "Bearer <token>"
    assert token not in files[-1].read_text()


# ------------------------------------------------------------------- --parameter JwtIssuer=...

OVERRIDDEN_ISSUER, OVERRIDDEN_AUDIENCE = "https://issuer.override.test", "aud-override"


@pytest.fixture(scope="module")
def overridden_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("overridden-app")
    api = LocalApiProcess(
        write_sample_app(root),
        log_path=root / "dev.log",
        extra_args=["--no-stream", "--ttl-interval", "3600", "--parameter", f"JwtIssuer={OVERRIDDEN_ISSUER}",
                    "--parameter", f"JwtAudience={OVERRIDDEN_AUDIENCE}"],
    )
    api.start()
    try:
        yield api
    finally:
        api.stop()


def claims_accepted(api, token):
    event = echo(api.request("POST", "/graphql", token=token, json={}))
    return event["requestContext"]["authorizer"]["jwt"]["claims"]


def test_given_jwt_parameter_overrides_when_the_test_helper_mints_a_token_then_the_authorizer_accepts_it(
    overridden_api,
):
    claims = claims_accepted(overridden_api, overridden_api.token("u", "w"))
    assert claims["iss"] == OVERRIDDEN_ISSUER and claims["aud"] == OVERRIDDEN_AUDIENCE


def test_given_jwt_parameter_overrides_when_dev_prints_its_banner_token_then_the_authorizer_accepts_it(
    overridden_api,
):
    lines = overridden_api.log_path.read_text().splitlines()
    token = lines[next(i for i, line in enumerate(lines) if "token (sub dev-user" in line) + 1].strip()
    assert claims_accepted(overridden_api, token)["iss"] == OVERRIDDEN_ISSUER


def test_given_jwt_parameter_overrides_when_chatkeep_token_gets_the_same_ones_then_the_authorizer_accepts_it(
    overridden_api, capsys
):
    from chatkeep_local import cli

    assert cli.main(["token", "--sub", "u", "--workspace", "w", "--template", str(overridden_api.template),
                     "--parameter", f"JwtIssuer={OVERRIDDEN_ISSUER}",
                     "--parameter", f"JwtAudience={OVERRIDDEN_AUDIENCE}"]) == 0
    token = capsys.readouterr().out.strip()
    assert claims_accepted(overridden_api, token)["aud"] == OVERRIDDEN_AUDIENCE


# ----------------------------------------------------------------------------- stream and TTL


def ddb(api):
    return boto3.client("dynamodb", endpoint_url=api.health()["dynamodb"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def stream_records(api):
    out = []
    if api.stream_log.exists():
        for line in api.stream_log.read_text().splitlines():
            out.extend(json.loads(line)["Records"])
    return out


def test_stream_poller_delivers_batches_and_drain_waits(sample_api):
    client = ddb(sample_api)
    before = len(stream_records(sample_api))
    for i in range(23):
        client.put_item(TableName="ChatTable", Item={"pk": {"S": f"stream-{i}"}, "sk": {"S": "S"}})
    result = sample_api.drain()
    assert result["drained"]
    new = stream_records(sample_api)[before:]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in new] == [f"stream-{i}" for i in range(23)]
    assert all(r["eventName"] == "INSERT" and r["eventVersion"] == "1.1" for r in new)
    assert list(sample_api.events_dir.glob("*-stream-StreamProcessorFunction-*.json"))


def test_given_concurrent_writers_to_one_session_then_each_key_streams_in_write_order_exactly_once(sample_api):
    # moto runs in a process of its own, the stream consumer in chatkeep dev's: the batches still carry every
    # write once, and a key's records in the order its writes committed. The session item is an atomic counter
    # every writer increments (its stream must read 1, 2, 3...), each writer's own item counts its own writes.
    from concurrent.futures import ThreadPoolExecutor

    client = ddb(sample_api)
    writers, writes = 4, 15
    session = {"pk": {"S": "order-session"}, "sk": {"S": "S"}}
    client.put_item(TableName="ChatTable", Item={**session, "n": {"N": "0"}})
    sample_api.drain()
    before = len(stream_records(sample_api))

    def write(w: int) -> None:
        for i in range(1, writes + 1):
            client.update_item(TableName="ChatTable", Key=session, UpdateExpression="ADD n :one",
                               ExpressionAttributeValues={":one": {"N": "1"}})
            client.put_item(TableName="ChatTable", Item={"pk": {"S": "order-session"}, "sk": {"S": f"w{w}"},
                                                         "n": {"N": str(i)}})

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    sample_api.drain()

    batches = [json.loads(line)["Records"] for line in sample_api.stream_log.read_text().splitlines()]
    assert all(len(batch) <= 10 for batch in batches)  # the template's BatchSize
    new = stream_records(sample_api)[before:]
    assert len({r["eventID"] for r in new}) == len(new) == 2 * writers * writes
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in new]
    assert sequence == sorted(sequence)
    by_key: dict[str, list[int]] = {}
    for r in new:
        by_key.setdefault(r["dynamodb"]["Keys"]["sk"]["S"], []).append(int(r["dynamodb"]["NewImage"]["n"]["N"]))
    assert by_key == {"S": list(range(1, writers * writes + 1)),
                      **{f"w{w}": list(range(1, writes + 1)) for w in range(writers)}}


def test_given_the_moto_process_dies_then_health_says_so_and_the_log_has_its_exit(tmp_path):
    import os
    import signal

    template = write_sample_app(tmp_path)
    api = LocalApiProcess(template, log_path=tmp_path / "dev.log", extra_args=["--no-stream", "--ttl-interval", "3600"])
    api.start()
    try:
        moto = api.health()["moto"]
        assert moto["mode"] == "process" and moto["alive"]
        os.kill(moto["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while api.request("GET", "/_local/health").status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        resp = api.request("GET", "/_local/health")
        assert resp.status_code == 503, api.log_tail()
        assert resp.json()["status"] == "moto process exited"
        assert resp.json()["moto"]["alive"] is False and resp.json()["moto"]["exit_code"] == -signal.SIGKILL
        while "exited with code -9" not in api.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = api.log_path.read_text()
        assert "ERROR chatkeep_local: the moto process (DynamoDB, SQS at http://127.0.0.1:" in log
        assert "exited with code -9: requests to it fail until chatkeep dev is restarted" in log
        assert "Traceback" not in log
    finally:
        api.stop()


def test_ttl_sweep_removes_with_service_identity(sample_api):
    client = ddb(sample_api)
    now = int(time.time())
    client.put_item(TableName="ChatTable", Item={"pk": {"S": "ttl-old"}, "sk": {"S": "S"},
                                                 "purge_at": {"N": str(now + 3600)}})
    client.put_item(TableName="ChatTable", Item={"pk": {"S": "ttl-api"}, "sk": {"S": "S"}})
    client.delete_item(TableName="ChatTable", Key={"pk": {"S": "ttl-api"}, "sk": {"S": "S"}})
    sample_api.drain()
    assert sample_api.sweep_ttl() == 0  # not expired yet
    sample_api.advance_clock(7200)
    assert sample_api.sweep_ttl() == 1
    sample_api.drain()
    removes = {r["dynamodb"]["Keys"]["pk"]["S"]: r for r in stream_records(sample_api) if r["eventName"] == "REMOVE"}
    assert removes["ttl-old"]["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert "userIdentity" not in removes["ttl-api"]


# ------------------------------------------------------------------------------- the real app


def test_real_app_401_404_health(local_api):
    assert local_api.request("POST", "/graphql", json={"query": "{__typename}"}).status_code == 401
    assert local_api.request("GET", "/no/such/route").json() == {"message": "Not Found"}
    assert local_api.health()["status"] == "ok"


def test_given_a_browser_on_graphql_then_the_offline_explorer_and_the_schema_it_introspects(local_api):
    """chatkeep dev's GraphQL explorer: GraphiQL from vendored files (no CDN), the dev token in its headers, and
    introspection on locally so it gets the schema with the query GraphiQL sends. An API client's GET is still
    API Gateway's 404."""
    from graphql import get_introspection_query

    page = local_api.request("GET", "/graphql", headers={"accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "https://" not in page.text and "http://" not in page.text.replace(local_api.base_url, "")
    scripts = re.findall(r'(?:src|href)="(/_local/graphiql/[^"]+)"', page.text)
    assert len(scripts) == 4
    for path in scripts:
        asset = local_api.request("GET", path)
        assert asset.status_code == 200 and len(asset.content) > 1000, path
    token = re.search(r'Bearer ([\w.-]+)', page.text).group(1)

    schema = local_api.gql(get_introspection_query(descriptions=True), token=token)
    assert not schema.get("errors"), schema
    assert "getTodoChatSessions" in {f["name"] for t in schema["data"]["__schema"]["types"] if t["name"] == "Query"
                                     for f in t["fields"]}
    assert local_api.request("GET", "/graphql").json() == {"message": "Not Found"}


def test_given_chatkeep_dev_then_the_banner_states_lifetimes_and_no_emf_documents_unless_asked(local_api):
    token = local_api.token("e2e-emf-user", "e2e-emf-ws")
    created = local_api.gql("mutation { createTodoChatSession(data: {todoId: 5, title: \"t\"}) { id } }", None, token)
    assert not created.get("errors"), created  # counts SessionsCreated: an EMF document in AWS

    log = Path(local_api.log_path).read_text(encoding="utf-8")
    assert "token (sub dev-user, workspace dev, valid 7 days; `chatkeep token` makes others, valid 1 hour" in log
    assert "EMF metrics: off (--metrics prints them)" in log
    assert '"_aws"' not in log


@pytest.mark.skipif(not (REPO / "functions/graphql_api/app.py").is_file(), reason="GraphQL function not written yet")
def test_real_graphql_request(local_api):
    token = local_api.token("e2e-runtime-user", "e2e-runtime-ws", name="Runtime")
    created = local_api.gql(
        "mutation($d: TodoChatSessionInput!) { createTodoChatSession(data: $d) { id title todoId } }",
        {"d": {"todoId": 7, "title": "local runtime"}},
        token,
    )
    assert "errors" not in created, created
    session = created["data"]["createTodoChatSession"]
    assert session["title"] == "local runtime" and session["todoId"] == 7
    listed = local_api.gql("query { getTodoChatSessions(todoId: 7) { totalCount sessions { id } } }", None, token)
    assert listed["data"]["getTodoChatSessions"]["totalCount"] == 1
    local_api.drain()
