"""The template's SQS queues and SQS event sources, as the local runtime creates and checks them.

`queues(template)` reads every AWS::SQS::Queue into CreateQueue arguments (QueueName or the logical id,
VisibilityTimeout, MessageRetentionPeriod, DelaySeconds, RedrivePolicy with its dead-letter queue's ARN
resolved, FIFO settings); `create_queues(client, specs)` creates them on the local SQS, dead-letter queues
first (SQS refuses a RedrivePolicy naming a queue that does not exist). Encryption, tags and policies have
no local meaning and are left out.

`sqs_sources(template)` reads the functions' `Type: SQS` events (SAM's event source mapping: Queue,
BatchSize, MaximumBatchingWindowInSeconds, FunctionResponseTypes, ScalingConfig.MaximumConcurrency,
Enabled); `mapping_errors()` refuses what Lambda's CreateEventSourceMapping refuses (a visibility timeout
shorter than the function's timeout, a batch size over 10 without a batching window, ...), so a template
that would not deploy does not run locally either.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chatkeep_local.lambda_runtime import Invoker
from chatkeep_local.sqs_poller import LONG_POLL_S, SqsPoller
from chatkeep_local.template import REGION, FunctionSpec, Resolver, queue_arn, queue_url, resources

log = logging.getLogger("chatkeep_local.sqs")

# CloudFormation property -> CreateQueue attribute, for the properties that change behaviour locally.
_ATTRIBUTES = (
    "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout", "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
)
# The SQS event's properties that change behaviour locally (FilterCriteria, MetricsConfig, KmsKeyArn: not).
_EVENT_PROPERTIES = (
    "BatchSize", "MaximumBatchingWindowInSeconds", "FunctionResponseTypes", "ScalingConfig", "Enabled",
)
DEFAULT_VISIBILITY_TIMEOUT_S = 30
LOCAL_DEFAULT_CONCURRENCY = 5  # Lambda starts an SQS mapping with 5 concurrent batches, then scales up


@dataclass
class QueueSpec:
    logical_id: str
    name: str
    attributes: dict[str, str]  # CreateQueue Attributes
    dead_letter_queue: str | None = None  # logical id of the RedrivePolicy's target

    @property
    def url(self) -> str:
        return queue_url(self.name)

    @property
    def arn(self) -> str:
        return queue_arn(self.name)

    @property
    def visibility_timeout_s(self) -> int:
        return int(self.attributes.get("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT_S))

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue", "false") == "true"

    @property
    def max_receive_count(self) -> int | None:
        policy = self.attributes.get("RedrivePolicy")
        return int(json.loads(policy)["maxReceiveCount"]) if policy else None


def _attribute_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value).lower() if str(value).lower() in ("true", "false") else str(value)


def queues(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, QueueSpec]:
    """Every AWS::SQS::Queue of the template, by logical id."""
    resolver = Resolver(template, overrides)
    declared = resources(template, "AWS::SQS::Queue")
    by_arn = {queue_arn(resolver.queue_name(lid)): lid for lid in declared}
    out: dict[str, QueueSpec] = {}
    for lid, res in declared.items():
        declared_props = res.get("Properties") or {}
        # Only what is used is resolved: encryption keys and the like may name things unknown locally.
        props = resolver.resolve({k: v for k, v in declared_props.items() if k in (*_ATTRIBUTES, "RedrivePolicy")})
        attributes = {k: _attribute_value(props[k]) for k in _ATTRIBUTES if props.get(k) is not None}
        if attributes.get("FifoQueue") == "false":
            attributes.pop("FifoQueue")
        dead_letter = None
        policy = props.get("RedrivePolicy")
        if isinstance(policy, str):
            policy = json.loads(policy)
        if policy:
            target = str(policy.get("deadLetterTargetArn", ""))
            dead_letter = by_arn.get(target)
            if dead_letter is None:
                raise ValueError(f"{lid}: RedrivePolicy names {target!r}, not a queue of the template")
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": target, "maxReceiveCount": int(policy["maxReceiveCount"])},
                separators=(",", ":"),
            )
        out[lid] = QueueSpec(lid, resolver.queue_name(lid), attributes, dead_letter)
    return out


def create_queues(client: Any, specs: Mapping[str, QueueSpec]) -> dict[str, str]:
    """Create `specs` with `client` (boto3 SQS), each dead-letter queue before the queues that redrive to
    it. A queue that exists already with the same attributes is kept. Returns {logical id: queue URL}."""
    created: dict[str, str] = {}

    def create(lid: str, path: tuple[str, ...] = ()) -> None:
        if lid in created:
            return
        if lid in path:
            raise ValueError(f"RedrivePolicy cycle: {' -> '.join((*path, lid))}")
        spec = specs[lid]
        if spec.dead_letter_queue:
            create(spec.dead_letter_queue, (*path, lid))
        client.create_queue(QueueName=spec.name, Attributes=spec.attributes)
        created[lid] = spec.url

    for lid in specs:
        create(lid)
    return created


# ------------------------------------------------------------------------------------ event sources


@dataclass
class SqsSource:
    function: str  # logical id of the consumer
    queue: str  # logical id of the queue it reads
    batch_size: int = 10
    max_batching_window_s: int = 0
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency
    reserved_concurrency: int | None = None  # the function's ReservedConcurrentExecutions
    enabled: bool = True
    ignored: list[str] = field(default_factory=list)  # declared properties not emulated (FilterCriteria...)

    @property
    def concurrency(self) -> int:
        """How many batches may be in the function at once (Lambda's cap: the lower of the two settings)."""
        caps = [c for c in (self.maximum_concurrency, self.reserved_concurrency) if c is not None]
        return min(caps) if caps else LOCAL_DEFAULT_CONCURRENCY


def _queue_of(queue: Any, resolver: Resolver, by_arn: Mapping[str, str]) -> str | None:
    """The logical id of the template queue an event's Queue (`!GetAtt Q.Arn`, or an ARN) names."""
    try:
        return by_arn.get(str(resolver.resolve(queue)))
    except ValueError:  # UnresolvableError
        return None


def sqs_sources(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> list[SqsSource]:
    """The SQS event sources declared on functions (`Type: SQS` events), in declaration order."""
    resolver = Resolver(template, overrides)
    by_arn = {queue_arn(resolver.queue_name(lid)): lid for lid in resources(template, "AWS::SQS::Queue")}
    glob = (template.get("Globals") or {}).get("Function") or {}
    out = []
    for lid, res in resources(template, "AWS::Serverless::Function").items():
        fprops = res.get("Properties") or {}
        reserved = resolver.resolve(fprops.get("ReservedConcurrentExecutions",
                                               glob.get("ReservedConcurrentExecutions")))
        for event in (fprops.get("Events") or {}).values():
            if not isinstance(event, dict) or event.get("Type") != "SQS":
                continue
            raw = event.get("Properties") or {}
            queue = _queue_of(raw.get("Queue"), resolver, by_arn)
            if queue is None:
                raise ValueError(f"{lid}: SQS event Queue {raw.get('Queue')!r} is not a queue of the template")
            props = resolver.resolve({k: v for k, v in raw.items() if k in _EVENT_PROPERTIES}) or {}
            scaling = props.get("ScalingConfig") or {}
            out.append(
                SqsSource(
                    function=lid,
                    queue=queue,
                    batch_size=int(props.get("BatchSize", 10)),
                    max_batching_window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (props.get("FunctionResponseTypes") or []),
                    maximum_concurrency=int(scaling["MaximumConcurrency"])
                    if scaling.get("MaximumConcurrency") is not None else None,
                    reserved_concurrency=int(reserved) if reserved not in (None, "") else None,
                    enabled=str(props.get("Enabled", True)).lower() != "false",
                    ignored=sorted(set(raw) - {"Queue", *_EVENT_PROPERTIES}),
                )
            )
    return out


def mapping_errors(source: SqsSource, queue: QueueSpec, function_timeout_s: int) -> list[str]:
    """What Lambda's CreateEventSourceMapping (hence `sam deploy`) would refuse in this mapping."""
    errors = []
    max_batch = 10 if queue.fifo else 10_000
    if not 1 <= source.batch_size <= max_batch:
        errors.append(f"BatchSize {source.batch_size} is not between 1 and {max_batch}")
    if not 0 <= source.max_batching_window_s <= 300:
        errors.append(f"MaximumBatchingWindowInSeconds {source.max_batching_window_s} is not between 0 and 300")
    if source.batch_size > 10 and source.max_batching_window_s < 1:
        errors.append("a BatchSize over 10 needs MaximumBatchingWindowInSeconds of at least 1")
    if source.maximum_concurrency is not None and not 2 <= source.maximum_concurrency <= 1000:
        errors.append(f"ScalingConfig.MaximumConcurrency {source.maximum_concurrency} is not between 2 and 1000")
    if queue.visibility_timeout_s < function_timeout_s:
        errors.append(
            f"Queue visibility timeout: {queue.visibility_timeout_s} seconds is less than Function timeout: "
            f"{function_timeout_s} seconds"
        )
    return [f"{source.function} <- {queue.logical_id}: {e}" for e in errors]


# ------------------------------------------------------------------------------------------ runtime


class LocalQueues:
    """What `chatkeep dev` runs for SQS: the template's queues on the local SQS endpoint and one poller per
    enabled SQS event source. Built from the template (refusing what would not deploy), then `start()`."""

    def __init__(
        self,
        template: Mapping[str, Any],
        functions: Mapping[str, FunctionSpec],
        overrides: Mapping[str, Any] | None = None,
    ):
        self.specs = queues(template, overrides)
        self.sources = sqs_sources(template, overrides)
        errors = []
        for src in self.sources:
            fn = functions.get(src.function)
            errors += mapping_errors(src, self.specs[src.queue], fn.timeout if fn else 3)
        if errors:
            raise ValueError("SQS event source mapping(s) that Lambda would refuse:\n  " + "\n  ".join(errors))
        self.endpoint_url: str | None = None
        self.client: Any = None
        self.pollers: list[SqsPoller] = []

    def environment(self) -> dict[str, str]:
        """For the functions' boto3: SQS_ENDPOINT_URL (to pass as endpoint_url, like DYNAMODB_ENDPOINT_URL)
        and AWS_ENDPOINT_URL_SQS (which boto3 itself honours)."""
        assert self.endpoint_url
        return {"SQS_ENDPOINT_URL": self.endpoint_url, "AWS_ENDPOINT_URL_SQS": self.endpoint_url}

    def create(self, endpoint_url: str) -> None:
        """Create the template's queues on the SQS at `endpoint_url` (again: a no-op)."""
        import boto3

        self.endpoint_url = endpoint_url
        self.client = boto3.client(
            "sqs", endpoint_url=endpoint_url, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",  # noqa: S106 - local SQS only
        )
        create_queues(self.client, self.specs)
        for lid, spec in self.specs.items():
            redrive = f" (DLQ {spec.dead_letter_queue} after {spec.max_receive_count} receives)" \
                if spec.dead_letter_queue else ""
            log.info("queue %s: %s, visibility %ss%s", lid, spec.name, spec.visibility_timeout_s, redrive)

    def start(
        self,
        endpoint_url: str,
        invokers: Mapping[str, Invoker],
        *,
        on_event: Callable[[dict[str, Any], str], None] | None = None,
        long_poll_s: int = LONG_POLL_S,
    ) -> None:
        """Create the queues (`create`), then start a poller per enabled SQS event source."""
        self.create(endpoint_url)
        self.start_pollers(invokers, on_event=on_event, long_poll_s=long_poll_s)

    def start_pollers(
        self,
        invokers: Mapping[str, Invoker],
        *,
        on_event: Callable[[dict[str, Any], str], None] | None = None,
        long_poll_s: int = LONG_POLL_S,
    ) -> None:
        """A poller per enabled SQS event source whose function has code (after `create`)."""
        for src in self.sources:
            self._start_poller(src, invokers.get(src.function), on_event, long_poll_s)

    def _start_poller(self, src: SqsSource, invoker: Invoker | None,
                      on_event: Callable[[dict[str, Any], str], None] | None, long_poll_s: int) -> None:
        queue = self.specs[src.queue]
        if invoker is None or not invoker.exists:
            log.warning("%s has no code yet; %s is not polled", src.function, src.queue)
            return
        if not src.enabled:
            log.info("event source %s <- %s is disabled in the template", src.function, src.queue)
            return
        if src.concurrency < 1:
            log.warning("%s has ReservedConcurrentExecutions 0 (throttled): %s is not polled",
                        src.function, src.queue)
            return
        if src.ignored:
            log.warning("%s <- %s: %s not emulated locally (every message is delivered)",
                        src.function, src.queue, ", ".join(src.ignored))

        def record(event: dict[str, Any]) -> None:
            if on_event:
                on_event(event, src.function)

        poller = SqsPoller(
            self.client, function=src.function, queue_url=queue.url, queue_arn=queue.arn, invoke=invoker.invoke,
            batch_size=src.batch_size, max_batching_window_s=src.max_batching_window_s,
            report_batch_item_failures=src.report_batch_item_failures, concurrency=src.concurrency,
            function_timeout_s=None if invoker.enforces_timeout else invoker.spec.timeout, on_event=record,
            long_poll_s=long_poll_s,
            max_receive_count=queue.max_receive_count,
            dead_letter_queue=self.specs[queue.dead_letter_queue].name if queue.dead_letter_queue else None,
        )
        poller.start()
        self.pollers.append(poller)
        log.info(
            "%s -> %s (BatchSize %d, window %ss, concurrency %d, ReportBatchItemFailures %s)",
            src.queue, src.function, src.batch_size, src.max_batching_window_s, src.concurrency,
            src.report_batch_item_failures,
        )

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()

    # -- /_local/queues
    def _depth(self, spec: QueueSpec) -> dict[str, int]:
        attrs = self.client.get_queue_attributes(
            QueueUrl=spec.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def status(self) -> dict[str, Any]:
        if self.client is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "endpoint": self.endpoint_url,
            "queues": {
                lid: {"name": spec.name, "url": spec.url, "arn": spec.arn, **self._depth(spec)}
                for lid, spec in self.specs.items()
            },
            "pollers": [
                {"function": p.function, "queue": p.queue_name, "alive": p.is_alive(), "error": p.error,
                 "last_error": p.last_error, **p.counters()}
                for p in self.pollers
            ],
        }

    def drain(self, timeout: float = 30.0) -> dict[str, Any]:
        """Block until every polled queue is empty (nothing visible, in flight or delayed: failed messages
        have come back and succeeded, or moved to their dead-letter queue) and no invocation is running."""
        polled = [spec for spec in self.specs.values() if any(p.queue_name == spec.name for p in self.pollers)]
        deadline = time.monotonic() + timeout
        while True:
            idle = not any(p.busy for p in self.pollers)
            if idle and all(not any(self._depth(spec).values()) for spec in polled):
                return {"drained": True, **self.status()}
            if time.monotonic() >= deadline:
                return {"drained": False, **self.status()}
            time.sleep(0.05)
