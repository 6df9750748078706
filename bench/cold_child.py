"""Run in a fresh interpreter by bench/cold_start.py (never imported by the bench itself).

    python bench/cold_child.py SPEC_JSON

SPEC: {"kind": "handler"|"baseline", "paths": [...], "module": "app", "event": {...}|null,
       "responses": {"Query": "<json body>", ...}}

Prints one line `RESULT {json}` with init / first request / second request, CPU and wall milliseconds.
DynamoDB answers come from canned HTTP bodies (a botocore `before-send` hook): the whole client pipeline
(serialise, sign, parse) runs, without a network."""

import json
import sys
import time

T0_WALL, T0_CPU = time.perf_counter(), time.process_time()
SPEC = json.loads(sys.argv[1])


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_kwargs):
        yield self.body


class _CannedResponse:
    def __init__(self, body: str) -> None:
        self.status_code = 200
        self.headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "bench"}
        self.content = body.encode()
        self.raw = _Raw(self.content)
        self.url = "https://dynamodb.us-east-1.amazonaws.com/"


def _canned(model=None, **_kwargs):
    return _CannedResponse(SPEC["responses"].get(model.name if model else "", "{}"))


def _canned_send(request=None, **_kwargs):
    target = (request.headers.get("X-Amz-Target") or b"") if request is not None else b""
    if isinstance(target, bytes):
        target = target.decode()
    return _CannedResponse(SPEC["responses"].get(target.rsplit(".", 1)[-1], "{}"))


class _Context:
    function_name = "chatkeep"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:chatkeep"
    aws_request_id = "cold-start"
    log_group_name = "/aws/lambda/chatkeep"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self):
        return 10_000


def _stamp():
    return time.perf_counter(), time.process_time()


def main() -> None:
    for path in reversed(SPEC["paths"]):
        sys.path.insert(0, path)
    marks = [(T0_WALL, T0_CPU)]
    if SPEC["kind"] == "baseline":
        import boto3

        client = boto3.client("dynamodb", region_name="us-east-1")
        marks.append(_stamp())
        client.meta.events.register("before-send.dynamodb.*", _canned_send)
        for _ in range(2):
            client.get_item(TableName="ChatTable", Key={"pk": {"S": "x"}, "sk": {"S": "S"}})
            marks.append(_stamp())
    else:
        import importlib

        module = importlib.import_module(SPEC["module"])
        marks.append(_stamp())
        if SPEC.get("event") is None:
            marks += [marks[-1], marks[-1]]
        else:
            from chatkeep import aws

            original = aws.client

            def hooked(service):
                made = original(service)
                if not getattr(made, "_bench_hooked", False):
                    made.meta.events.register("before-send.dynamodb.*", _canned_send)
                    made._bench_hooked = True
                return made

            hooked.cache_clear = original.cache_clear  # keep the factory's interface
            aws.client = hooked
            for _ in range(2):
                out = module.lambda_handler(json.loads(json.dumps(SPEC["event"])), _Context())
                if out.get("statusCode") != 200 or '"errors"' in (out.get("body") or ""):
                    raise SystemExit(f"request failed: {out}")
                marks.append(_stamp())
    walls = [round((b[0] - a[0]) * 1000, 2) for a, b in zip(marks, marks[1:], strict=False)]
    cpus = [round((b[1] - a[1]) * 1000, 2) for a, b in zip(marks, marks[1:], strict=False)]
    print("RESULT " + json.dumps({"wall": walls, "cpu": cpus, "modules": len(sys.modules)}), flush=True)


main()
