"""Calling the model: Bedrock's ConverseStream through boto3, its events normalised, its errors turned into
a turn's stable failure codes (docs/agents.md, "Failure codes").

boto3 is used as in AWS; locally its `endpoint_url` points at the stand-in model of the local runtime, so
botocore's own serialisation, event-stream parsing and error mapping run the same code path."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chatkeep.models import Usage


class FailureCode:
    MODEL_THROTTLED = "model_throttled"
    MODEL_ERROR = "model_error"
    CONTEXT_TOO_LONG = "context_too_long"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    MODEL_ACCESS_DENIED = "model_access_denied"
    QUOTA_EXCEEDED = "quota_exceeded"
    AGENT_UNAVAILABLE = "agent_unavailable"


class ModelFailure(Exception):
    """The model call failed: `code` is the turn's stable failure code; `retryable` says whether backing off
    and calling again may help (throttling, a busy or briefly unavailable model)."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    stop_reason: str | None
    usage: Usage
    latency_ms: int | None


ModelEvent = TextDelta | Finished

# Bedrock's error codes (modeled exceptions and in-stream exception events) -> (failure code, retryable)
_ERRORS: dict[str, tuple[str, bool]] = {
    "ThrottlingException": (FailureCode.MODEL_THROTTLED, True),
    "throttlingException": (FailureCode.MODEL_THROTTLED, True),
    "ServiceUnavailableException": (FailureCode.MODEL_ERROR, True),
    "serviceUnavailableException": (FailureCode.MODEL_ERROR, True),
    "ModelNotReadyException": (FailureCode.MODEL_ERROR, True),
    "AccessDeniedException": (FailureCode.MODEL_ACCESS_DENIED, False),
    "ResourceNotFoundException": (FailureCode.MODEL_ERROR, False),
    "ModelTimeoutException": (FailureCode.MODEL_ERROR, False),
    "ModelErrorException": (FailureCode.MODEL_ERROR, False),
    "modelStreamErrorException": (FailureCode.MODEL_ERROR, False),
    "InternalServerException": (FailureCode.MODEL_ERROR, False),
    "internalServerException": (FailureCode.MODEL_ERROR, False),
    "ValidationException": (FailureCode.MODEL_ERROR, False),
    "validationException": (FailureCode.MODEL_ERROR, False),
}
_TOO_LONG_HINTS = ("too long", "context window", "too many tokens", "context length", "maximum context")


def classify_error(code: str | None, message: str) -> ModelFailure:
    failure, retryable = _ERRORS.get(code or "", (FailureCode.MODEL_ERROR, False))
    if code in ("ValidationException", "validationException") and any(h in message.lower() for h in _TOO_LONG_HINTS):
        failure = FailureCode.CONTEXT_TOO_LONG
    return ModelFailure(failure, f"{code or 'error'}: {message}"[:500], retryable=retryable)


def _from_exception(exc: Exception) -> ModelFailure:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):  # EventStreamError (an in-stream exception event) is a ClientError too
        error = exc.response.get("Error", {})
        return classify_error(error.get("Code"), str(error.get("Message") or exc))
    if isinstance(exc, BotoCoreError) or _is_transport_error(exc):
        # Connection refused or reset, a read timeout, a stream cut mid-way (botocore leaves urllib3's errors
        # raised while reading an event stream unwrapped): the model did not answer in full.
        return ModelFailure(FailureCode.MODEL_ERROR, f"{type(exc).__name__}: {exc}"[:500], retryable=True)
    raise exc


def _is_transport_error(exc: Exception) -> bool:
    from urllib3.exceptions import HTTPError

    return isinstance(exc, (HTTPError, ConnectionError, TimeoutError))


class ModelStream:
    """One ConverseStream response as normalised events; `close()` (from any thread) ends it early, so a
    cancelled turn stops reading at once even while the model is silent."""

    def __init__(self, response: dict[str, Any]) -> None:
        self._stream = response["stream"]

    def __iter__(self) -> Iterator[ModelEvent]:
        stop_reason: str | None = None
        finished: Finished | None = None
        try:
            for event in self._stream:
                if "contentBlockDelta" in event:
                    text = event["contentBlockDelta"].get("delta", {}).get("text")
                    if text:
                        yield TextDelta(text)
                elif "messageStop" in event:
                    stop_reason = event["messageStop"].get("stopReason")
                elif "metadata" in event:
                    usage = event["metadata"].get("usage", {})
                    latency = event["metadata"].get("metrics", {}).get("latencyMs")
                    # Read on to the stream's end before reporting it: the connection then goes back to the
                    # pool (a stream left unread is dropped, and the next turn pays a new TLS handshake).
                    finished = Finished(stop_reason=stop_reason,
                                        usage=Usage(input_tokens=int(usage.get("inputTokens", 0)),
                                                    output_tokens=int(usage.get("outputTokens", 0))),
                                        latency_ms=int(latency) if latency is not None else None)
        except Exception as exc:
            raise _from_exception(exc) from exc
        if finished is not None:
            yield finished
            return
        # A stream that ends without its metadata event was cut short.
        raise ModelFailure(FailureCode.MODEL_ERROR, "the model's stream ended before its metadata event",
                           retryable=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing an already closed or broken stream is fine
            self._stream.close()


class BedrockModel:
    """The production model client: `bedrock-runtime` ConverseStream through the cached boto3 client."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from chatkeep import aws

            self._client = aws.bedrock_runtime()
        return self._client

    def stream(self, request: dict[str, Any]) -> ModelStream:
        try:
            return ModelStream(self.client.converse_stream(**request))
        except Exception as exc:
            raise _from_exception(exc) from exc
