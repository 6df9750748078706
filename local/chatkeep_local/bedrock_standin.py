"""A local stand-in for Amazon Bedrock's ConverseStream: offline, deterministic, with faults on demand.

The agent-turn worker talks to it with the real boto3 `bedrock-runtime` client (`endpoint_url` pointed at it), so
botocore's own serialization, event-stream parsing and error mapping run exactly as against AWS. botocore's
service model for `bedrock-runtime` is the authority for every status code, error name and inference-config
bound used here. Modules: this one (the model: validation, replies, recording, the fault queue);
`bedrock_standin_config` (configuration, faults, what the service model says); `bedrock_standin_reply` (an answer
in wire form); `eventstream` (the binary encoding); `bedrock_standin_http` (the HTTP endpoint and control API;
`StandInModel.serve()` starts it on a loopback port, `chatkeep dev` mounts it on its main port). See
docs/local-model.md.

The model
    Replies `Stand-in reply to N messages (system: yes|no, temperature: T). You said: "<last user words>".`,
    streamed as messageStart, several contentBlockDelta (`chunks`, default 6) `chunk_delay_s` apart (default
    0.18 s: about a second in all), contentBlockStop, messageStop {stopReason}, metadata {usage, metrics}.
    Tokens are ceil(characters / 4): input = system + message texts, output = the reply. `stopReason` is
    `end_turn`; `max_tokens` when inferenceConfig.maxTokens is smaller than the reply (cut to maxTokens * 4
    characters); `stop_sequence` when one of inferenceConfig.stopSequences occurs in it (cut before it).

It rejects what Bedrock rejects (HTTP 400 ValidationException, Bedrock's wording), in this order:
    an unknown model id (only when `allowed_model_ids` is set; ARNs match on their resource id);
    inferenceConfig outside the service model's bounds (temperature and topP 0..1, maxTokens >= 1);
    messages not starting with a user message; roles not alternating; an empty content list; a blank text block;
    maxTokens above the model's limit (`max_output_tokens`); input above `context_window_tokens`.

Configuration (`StandInConfig`; `StandInConfig.from_env()` reads these; `POST /_local/model/config` changes them):
    CHATKEEP_LOCAL_MODEL_CHUNK_DELAY     seconds between chunks (chunk_delay_s, default 0.18; tests use 0)
    CHATKEEP_LOCAL_MODEL_CHUNKS          deltas per reply (chunks, default 6)
    CHATKEEP_LOCAL_MODEL_IDS             comma-separated model ids served (allowed_model_ids; default: any)
    CHATKEEP_LOCAL_MODEL_CONTEXT_TOKENS  input token limit (context_window_tokens, default 200000)
    CHATKEEP_LOCAL_MODEL_MAX_TOKENS      the model's maxTokens limit (max_output_tokens, default 8192)

Faults (`add_fault()`, or `POST /_local/model/faults` with one JSON object or a list of them). Faults queue in
the order added; each request takes the FIRST pending fault that matches it and uses up one of its `count`.
    {"kind": "throttle"}                              HTTP 429 ThrottlingException
    {"kind": "access_denied"}                         HTTP 403 AccessDeniedException
    {"kind": "error", "error": "ModelErrorException"} HTTP error of any ConverseStream error shape, status
                                                      from the service model (ModelErrorException 424,
                                                      InternalServerException 500, ServiceUnavailableException
                                                      503, ModelTimeoutException 408, ModelNotReadyException
                                                      429, ResourceNotFoundException 404, ValidationException
                                                      400, ...)
    {"kind": "stall", "seconds": 5, "after_deltas": null}  hold before the response (null: the call itself
                                                      waits) or after N deltas (0: after messageStart), then go on
    {"kind": "break", "after_deltas": 2, "exception": "modelStreamErrorException"}
                                                      N deltas, then an in-stream exception (also
                                                      throttlingException, internalServerException,
                                                      validationException, serviceUnavailableException)
    {"kind": "drop", "after_deltas": 2}               N deltas, then the connection is cut (no clean end);
                                                      break and drop default to after_deltas 2
    {"kind": "slow", "chunk_delay_s": 0.5}            this request's chunk delay
  Every fault also takes: "count" (requests it applies to; default 1; null = every matching request until the
  faults are cleared), "model_id" (only requests for this model id), "message" (the error text). Clearing the
  faults also releases any stream stalled at that moment.

Every request is recorded (the latest RECORD_LIMIT, 10000; `requests()`, `GET /_local/model/requests`):
model_id (as sent, URL-decoded), body (the parsed JSON botocore sent), received_at (epoch seconds), request_id
(its x-amzn-RequestId), fault (the fault it took, or null) and outcome: how the answer was planned to end
(`end_turn` / `max_tokens` / `stop_sequence`, the error name such as `ThrottlingException`,
`break:<exceptionType>`, `drop`), or `client_disconnected` once the caller closed the stream early (a cancelled
turn).

Note: botocore retries ThrottlingException, ModelNotReadyException, InternalServerException and
ServiceUnavailableException itself by default; a client that must observe them configures
`Config(retries={"total_max_attempts": 1})`. In-stream exceptions are never retried by botocore.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from chatkeep_local.bedrock_standin_config import (
    DEFAULT_MESSAGES,
    MSG_ALTERNATE,
    MSG_FIRST_USER,
    MSG_INVALID_MODEL,
    MSG_TOO_LONG,
    Fault,
    StandInConfig,
    inference_bounds,
    resource_id,
    tokens,
)
from chatkeep_local.bedrock_standin_reply import ErrorReply, StreamReply, split_chunks

RECORD_LIMIT = 10_000  # requests kept (oldest dropped first): a long `chatkeep dev` session stays bounded


def _texts(blocks: Any) -> list[str]:
    return [b["text"] for b in blocks or [] if isinstance(b, Mapping) and isinstance(b.get("text"), str)]


@dataclass
class _Record:
    model_id: str
    body: Any
    received_at: float
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    fault: dict[str, Any] | None = None
    outcome: str | None = None
    deltas_sent_at: list[float] = field(default_factory=list)  # epoch seconds each delta was written (bench: live)


class StandInModel:
    """The stand-in: `converse_stream()` plans the answer to one request; the HTTP side streams it."""

    def __init__(self, config: StandInConfig | None = None):
        self.config = config or StandInConfig()
        self._lock = threading.Lock()
        self._records: deque[_Record] = deque(maxlen=RECORD_LIMIT)
        self._faults: list[Fault] = []
        self._release = threading.Event()

    # ---------------------------------------------------------------------------- recording and faults
    def requests(self, clear: bool = False) -> list[dict[str, Any]]:
        """Every request received, oldest first (clear=True empties the record after reading it)."""
        with self._lock:
            out = [asdict(r) for r in self._records]
            if clear:
                self._records.clear()
        return out

    def clear_requests(self) -> int:
        with self._lock:
            n = len(self._records)
            self._records.clear()
        return n

    def add_fault(self, fault: Fault | Mapping[str, Any]) -> Fault:
        fault = fault if isinstance(fault, Fault) else Fault.from_dict(fault)
        with self._lock:
            self._faults.append(fault)
        return fault

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**f.to_dict(), "count": f.count} for f in self._faults]

    def clear_faults(self) -> int:
        """Forget every pending fault and release any stream stalled right now."""
        with self._lock:
            n = len(self._faults)
            self._faults.clear()
            released, self._release = self._release, threading.Event()
        released.set()
        return n

    def close(self) -> None:
        self.clear_faults()

    def wait(self, seconds: float) -> None:
        """Sleep, unless the faults are cleared (or the model closed) meanwhile."""
        if seconds > 0:
            self._release.wait(seconds)

    def _take_fault(self, model_id: str) -> Fault | None:
        """The first pending fault for this model id, one of its `count` used up (a copy: what applied).
        The caller holds the lock."""
        for i, fault in enumerate(self._faults):
            if fault.matches(model_id):
                taken = replace(fault, count=None)
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count == 0:
                        del self._faults[i]
                return taken
        return None

    def delta_sent(self, request_id: str) -> None:
        """The HTTP side wrote a delta of this request's stream (when, for chunk latency: bench/live.py)."""
        at = time.time()
        with self._lock:
            for record in reversed(self._records):
                if record.request_id == request_id:
                    record.deltas_sent_at.append(at)
                    return

    def finish(self, request_id: str, outcome: str) -> None:
        """The HTTP side reports how a stream really ended (e.g. `client_disconnected`)."""
        with self._lock:
            for record in reversed(self._records):
                if record.request_id == request_id:
                    record.outcome = outcome
                    return

    # ------------------------------------------------------------------------------------ one request
    def converse_stream(self, model_id: str, raw_body: bytes) -> tuple[str, ErrorReply | StreamReply]:
        """-> (request id, the answer) for `POST /model/{model_id}/converse-stream` with this body."""
        try:
            body: Any = json.loads(raw_body or b"{}")
        except ValueError:
            body = raw_body.decode("utf-8", "replace")
        record = _Record(model_id=model_id, body=body, received_at=time.time())
        with self._lock:  # recorded and its fault taken at once: a recorded request has its fault
            fault = self._take_fault(model_id)
            record.fault = fault.to_dict() if fault else None
            self._records.append(record)
        try:
            reply = self._answer(model_id, body, fault)
        except (AttributeError, TypeError, KeyError):  # not the shapes botocore serializes (a hand-made request)
            reply = ErrorReply("ValidationException", DEFAULT_MESSAGES["ValidationException"])
        record.outcome = reply.error_type if isinstance(reply, ErrorReply) else reply.planned_outcome
        return record.request_id, reply

    def record_forwarded(self, model_id: str, raw_body: bytes) -> None:
        """Record a request that `chatkeep dev --bedrock` sends to real Bedrock (no fault, no answer here)."""
        try:
            body: Any = json.loads(raw_body or b"{}")
        except ValueError:
            body = raw_body.decode("utf-8", "replace")
        record = _Record(model_id=model_id, body=body, received_at=time.time())
        record.outcome = "forwarded to Amazon Bedrock"
        with self._lock:
            self._records.append(record)

    def _answer(self, model_id: str, body: Any, fault: Fault | None) -> ErrorReply | StreamReply:
        if fault is not None and fault.kind in ("throttle", "access_denied", "error"):
            error = {"throttle": "ThrottlingException", "access_denied": "AccessDeniedException"}.get(
                fault.kind, fault.error or "")
            return ErrorReply(error, fault.message or DEFAULT_MESSAGES[error])
        if not isinstance(body, Mapping):
            return ErrorReply("ValidationException", DEFAULT_MESSAGES["ValidationException"])
        allowed = self.config.allowed_model_ids
        if allowed is not None and model_id not in allowed and resource_id(model_id) not in allowed:
            return ErrorReply("ValidationException", MSG_INVALID_MODEL)
        invalid = self._invalid(body)
        if invalid:
            return ErrorReply("ValidationException", invalid)
        return self._stream(body, fault)

    def _invalid(self, body: Mapping[str, Any]) -> str | None:
        """Bedrock's ValidationException message for this request body, or None."""
        inference = body.get("inferenceConfig") or {}
        bounds = []
        for name, (low, high) in inference_bounds().items():
            value = inference.get(name)
            if isinstance(value, int | float) and low is not None and value < low:
                bounds.append(f"Value '{value}' at 'inferenceConfig.{name}' failed to satisfy constraint: "
                              f"Member must have value greater than or equal to {low}")
            elif isinstance(value, int | float) and high is not None and value > high:
                bounds.append(f"Value '{value}' at 'inferenceConfig.{name}' failed to satisfy constraint: "
                              f"Member must have value less than or equal to {high}")
        if bounds:
            return f"{len(bounds)} validation error{'s' if len(bounds) > 1 else ''} detected: " + "; ".join(bounds)
        messages = body.get("messages") or []
        if not messages or messages[0].get("role") != "user":
            return MSG_FIRST_USER
        for previous, message in zip(messages, messages[1:], strict=False):
            if message.get("role") == previous.get("role"):
                return MSG_ALTERNATE
        for i, message in enumerate(messages):
            content = message.get("content") or []
            if not content:
                return (f"The content field in the Message object at messages.{i} is empty. "
                        "Add a ContentBlock object to the content field and try again.")
            for j, block in enumerate(content):
                if isinstance(block, Mapping) and "text" in block and not str(block["text"]).strip():
                    return (f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank. "
                            "Add text to the text field, and try again.")
        max_tokens = inference.get("maxTokens")
        limit = self.config.max_output_tokens
        if isinstance(max_tokens, int) and max_tokens > limit:
            return (f"The maximum tokens you requested exceeds the model limit of {limit}. "
                    f"Try again with a maximum tokens value that is lower than {limit}.")
        if self._input_tokens(body) > self.config.context_window_tokens:
            return MSG_TOO_LONG
        return None

    @staticmethod
    def _input_tokens(body: Mapping[str, Any]) -> int:
        texts = _texts(body.get("system"))
        for message in body.get("messages") or []:
            texts += _texts(message.get("content"))
        return sum(tokens(t) for t in texts)

    @staticmethod
    def reply_text(body: Mapping[str, Any]) -> str:
        """What the stand-in says to this request: what it was sent."""
        messages = body.get("messages") or []
        system = "yes" if _texts(body.get("system")) else "no"
        temperature = (body.get("inferenceConfig") or {}).get("temperature")
        last_user: Mapping[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        said = " ".join(" ".join(_texts(last_user.get("content"))).split())
        if len(said) > 80:
            said = said[:79].rstrip() + "…"
        n = len(messages)
        return (f"Stand-in reply to {n} message{'' if n == 1 else 's'} (system: {system}, temperature: "
                f"{'default' if temperature is None else temperature}). You said: \"{said}\".")

    def _stream(self, body: Mapping[str, Any], fault: Fault | None) -> StreamReply:
        text = self.reply_text(body)
        inference = body.get("inferenceConfig") or {}
        stop_reason = "end_turn"
        stops = [text.find(s) for s in inference.get("stopSequences") or [] if s and s in text]
        limit = inference.get("maxTokens")
        limit_chars = limit * 4 if isinstance(limit, int) else None
        if stops and (limit_chars is None or min(stops) <= limit_chars):
            text, stop_reason = text[: min(stops)], "stop_sequence"
        elif limit_chars is not None and len(text) > limit_chars:
            text, stop_reason = text[:limit_chars], "max_tokens"
        reply = StreamReply(
            chunks=split_chunks(text, self.config.chunks),
            stop_reason=stop_reason,
            input_tokens=self._input_tokens(body),
            output_tokens=tokens(text),
            chunk_delay_s=self.config.chunk_delay_s,
        )
        if fault is None:
            return reply
        if fault.kind == "slow":
            reply.chunk_delay_s = fault.chunk_delay_s or 0.0
        elif fault.kind == "stall" and fault.after_deltas is None:
            reply.hold_s = fault.seconds or 0.0
        elif fault.kind == "stall":
            reply.stall = (fault.after_deltas or 0, fault.seconds or 0.0)
        elif fault.kind == "break":
            exception_type = fault.exception or "modelStreamErrorException"
            reply.cut = (fault.after_deltas or 0, exception_type, fault.message or DEFAULT_MESSAGES[exception_type])
        elif fault.kind == "drop":
            reply.cut = (fault.after_deltas or 0, None, "")
        return reply

    # -------------------------------------------------------------------------------------------- HTTP
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Any:
        """Serve this model over HTTP in a background thread: -> a started `StandInServer` (`.endpoint_url`
        for boto3, `.close()`)."""
        from chatkeep_local.bedrock_standin_http import StandInServer

        return StandInServer(self, host, port)


__all__ = ["ErrorReply", "Fault", "StandInConfig", "StandInModel", "StreamReply"]
