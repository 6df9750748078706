"""Fault injection for DynamoDB, for tests and chaos drills (local only: never part of the deployed layer).

`inject(client, rules)` hooks a boto3 DynamoDB client's `before-send` event: a matching attempt never
reaches DynamoDB and gets the error response DynamoDB would send (HTTP 400 throttling JSON, 500/503), or a
connection error. Because it answers at the HTTP layer, botocore's retry handler (standard mode, configured
in chatkeep.aws) sees it exactly as it would see the real thing: retries with backoff, then raises, and the
repository turns what is left into ServiceUnavailable. Works for the API (the cached chatkeep.aws client)
and the stream function (same client), in process and under moto (registered before moto's own hook).

    from chatkeep import aws
    from chatkeep_local import faults
    plan = faults.inject(aws.dynamodb(), [faults.Rule("TransactWriteItems", times=2)])
    ...  # 2 throttled attempts, then the real call
    plan.attempts["TransactWriteItems"]  # 3
    plan.remove()
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

THROTTLED = "ProvisionedThroughputExceededException"
STATUS = {
    "ProvisionedThroughputExceededException": 400,
    "ThrottlingException": 400,
    "RequestLimitExceeded": 400,
    "TransactionConflictException": 400,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
}
CONNECTION_ERROR = "EndpointConnectionError"


@dataclass
class Rule:
    """Fail attempts of `operation` (None: every operation) with `code`, `times` times (None: always).
    `match(body: bytes) -> bool` narrows it to requests whose JSON body matches (e.g. one session's key)."""

    operation: str | None = None
    code: str = THROTTLED
    times: int | None = None
    match: Callable[[bytes], bool] | None = None
    status: int | None = None  # HTTP status of the answer (default: DynamoDB's for `code`, else 400)
    # For code="TransactionCanceledException": one reason code per item ("None", "ConditionalCheckFailed",
    # "TransactionConflict", ...), as DynamoDB lists them.
    reasons: list[str] | None = None
    fired: int = 0

    def applies(self, operation: str, body: bytes) -> bool:
        if self.operation is not None and self.operation != operation:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        return self.match is None or self.match(body)


class _RawBody:
    """What botocore reads an HTTP body from (urllib3-like: stream() and read())."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


@dataclass
class FaultPlan:
    client: Any
    rules: list[Rule]
    attempts: Counter[str] = field(default_factory=Counter)  # every attempt seen (failed or not)
    injected: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Any, event_name: str = "", **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        with self._lock:
            self.attempts[operation] += 1
            rule = next((r for r in self.rules if r.applies(operation, body)), None)
            if rule is None:
                return None  # the real call
            rule.fired += 1
            self.injected[operation] += 1
        # botocore calls every before-send handler and keeps the first answer: moto's hook (after ours)
        # would still run the request. Point it where no handler answers, so nothing is written.
        url, request.url = request.url, "https://fault-injected.invalid/"
        if rule.code == CONNECTION_ERROR:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url=url)
        from botocore.awsrequest import AWSResponse

        status = rule.status or STATUS.get(rule.code, 400)
        error: dict[str, Any] = {"__type": f"com.amazonaws.dynamodb.v20120810#{rule.code}",
                                 "message": "injected fault"}
        if rule.reasons is not None:
            error["CancellationReasons"] = [{"Code": code} for code in rule.reasons]
        payload = json.dumps(error).encode()
        headers = {"x-amzn-requestid": "injected-fault", "content-type": "application/x-amz-json-1.0",
                   "content-length": str(len(payload))}
        return AWSResponse(url, status, headers, _RawBody(payload))

    def remove(self) -> None:
        self.client.meta.events.unregister("before-send.dynamodb", self, unique_id=self._uid)

    @property
    def _uid(self) -> str:
        return f"chatkeep-faults-{id(self)}"


def inject(client: Any, rules: list[Rule]) -> FaultPlan:
    plan = FaultPlan(client, list(rules))
    # First: moto answers requests from its own before-send hook; ours must come before it.
    client.meta.events.register_first("before-send.dynamodb", plan, unique_id=plan._uid)
    return plan


def body_contains(*needles: str) -> Callable[[bytes], bool]:
    encoded = [n.encode() for n in needles]
    return lambda body: all(n in body for n in encoded)


__all__ = ["CONNECTION_ERROR", "STATUS", "THROTTLED", "FaultPlan", "LostResponses", "Rule", "body_contains", "inject",
           "lose_responses"]


@dataclass
class LostResponses:
    """The write lands, its answer is lost (a timeout, a dropped connection): botocore sends it again."""

    client: Any
    operation: str
    times: int = 1
    fired: int = 0

    def __call__(self, response: Any = None, attempts: int = 1, **_: Any) -> float | None:
        if response is not None and self.fired < self.times and response[0].status_code < 300:
            self.fired += 1
            return 0.0  # "retry now": the same request (same ids, same ClientRequestToken) goes again
        return None

    def remove(self) -> None:
        self.client.meta.events.unregister(f"needs-retry.dynamodb.{self.operation}", self,
                                           unique_id=f"chatkeep-lost-{id(self)}")


def lose_responses(client: Any, operation: str, times: int = 1) -> LostResponses:
    lost = LostResponses(client, operation, times)
    client.meta.events.register_first(f"needs-retry.dynamodb.{operation}", lost, unique_id=f"chatkeep-lost-{id(lost)}")
    return lost
