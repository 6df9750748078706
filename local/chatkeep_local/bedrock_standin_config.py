"""The Bedrock stand-in's facts and settings: what botocore's service model says (error statuses, in-stream
exception types, inference-config bounds), Bedrock's error wording, the stand-in's configuration and its faults.
The schema is documented in `bedrock_standin` and docs/local-model.md."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

# Bedrock's own wording (as its ValidationException messages read).
MSG_FIRST_USER = ("A conversation must start with a user message. "
                  "Try again with a conversation that starts with a user message.")
MSG_ALTERNATE = ("A conversation must alternate between user and assistant roles. "
                 "Make sure the conversation alternates between user and assistant roles and try again.")
MSG_INVALID_MODEL = "The provided model identifier is invalid."
MSG_TOO_LONG = "Input is too long for requested model."
DEFAULT_MESSAGES = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
    "ResourceNotFoundException": "The requested resource could not be found.",
    "ModelTimeoutException": "Model has timed out in processing the request. Try your request again.",
    "InternalServerException": "The system encountered an unexpected error during processing. Try your request again.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
    "ValidationException": "Malformed input request, please reformat your input and try again.",
    "ModelNotReadyException": "Model is not ready to serve inference requests. Try your request again.",
    "ModelErrorException": "The model encountered an error processing your request. Try your request again.",
    "modelStreamErrorException": "The model stream encountered an error. Try your request again.",
    "throttlingException": "Too many requests, please wait before trying again.",
    "internalServerException": "The system encountered an unexpected error during processing. Try your request again.",
    "validationException": "Input is too long for requested model.",
    "serviceUnavailableException": "Bedrock is unable to process your request.",
}

ENV_PREFIX = "CHATKEEP_LOCAL_MODEL_"
FAULT_KINDS = ("throttle", "access_denied", "error", "stall", "break", "drop", "slow")


# ------------------------------------------------------------------------------------- the service model
@functools.cache
def _service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("bedrock-runtime")


@functools.cache
def http_error_status() -> dict[str, int]:
    """ConverseStream's error shapes -> HTTP status, from botocore's service model."""
    operation = _service_model().operation_model("ConverseStream")
    return {shape.name: shape.metadata["error"]["httpStatusCode"] for shape in operation.error_shapes}


@functools.cache
def stream_exception_types() -> tuple[str, ...]:
    """The exceptions ConverseStream's event stream can carry (`:exception-type` values)."""
    members = _service_model().shape_for("ConverseStreamOutput").members
    return tuple(name for name, shape in members.items() if shape.metadata.get("exception"))


@functools.cache
def inference_bounds() -> dict[str, tuple[float | None, float | None]]:
    members = _service_model().shape_for("InferenceConfiguration").members
    return {name: (s.metadata.get("min"), s.metadata.get("max")) for name, s in members.items()
            if s.type_name in ("integer", "float", "long", "double")}


def tokens(text: str) -> int:
    """The stand-in's token count: ceil(characters / 4)."""
    return math.ceil(len(text) / 4)


# ----------------------------------------------------------------------------------------- configuration
@dataclass
class StandInConfig:
    chunk_delay_s: float = 0.18
    chunks: int = 6
    allowed_model_ids: tuple[str, ...] | None = None  # None: every model id is served
    context_window_tokens: int = 200_000
    max_output_tokens: int = 8192

    _ENV = {"chunk_delay_s": "CHUNK_DELAY", "chunks": "CHUNKS", "allowed_model_ids": "IDS",
            "context_window_tokens": "CONTEXT_TOKENS", "max_output_tokens": "MAX_TOKENS"}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StandInConfig:
        environ = os.environ if environ is None else environ
        config = cls()
        config.update({key: environ[ENV_PREFIX + suffix] for key, suffix in cls._ENV.items()
                       if environ.get(ENV_PREFIX + suffix, "").strip()})
        return config

    def update(self, data: Mapping[str, Any]) -> None:
        """Set the given fields (strings are parsed: env values); ValueError names a bad key or value."""
        _check_fields("config", data, self)
        parsed: dict[str, Any] = {}
        for key, value in data.items():
            if key == "allowed_model_ids":
                if isinstance(value, str):
                    value = [v.strip() for v in value.split(",") if v.strip()]
                if value is not None and not isinstance(value, list | tuple):
                    raise ValueError(f"{key} must be a list of model ids, a comma-separated string or null")
                parsed[key] = None if value is None else tuple(str(v) for v in value)
            elif key == "chunk_delay_s":
                parsed[key] = _number(key, value, float, minimum=0)
            else:
                parsed[key] = _number(key, value, int, minimum=1)
        for key, value in parsed.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["allowed_model_ids"] = None if self.allowed_model_ids is None else list(self.allowed_model_ids)
        return data


def _check_fields(what: str, data: Mapping[str, Any], cls: Any) -> None:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {what} field(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")


def _number(name: str, value: Any, kind: type, minimum: float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or number < minimum:
        raise ValueError(f"{name} must be a number >= {minimum}, got {value!r}")
    return number


# ------------------------------------------------------------------------------------------------ faults
@dataclass
class Fault:
    kind: str
    count: int | None = 1  # None: every matching request until cleared
    model_id: str | None = None
    message: str | None = None
    error: str | None = None  # kind "error": a ConverseStream error shape name
    exception: str | None = None  # kind "break": an in-stream exception type
    after_deltas: int | None = None  # stall / break / drop: where in the stream
    seconds: float | None = None  # stall
    chunk_delay_s: float | None = None  # slow

    @classmethod
    def from_dict(cls, data: object) -> Fault:
        """A validated fault; ValueError says what is wrong (an unknown key, kind, error name, ...)."""
        if not isinstance(data, Mapping):
            raise ValueError("a fault is a JSON object")
        _check_fields("fault", data, cls)
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        fault = cls(**dict(data))
        if fault.count is not None:
            fault.count = _number("count", fault.count, int, minimum=1)
        if kind == "error" and fault.error not in http_error_status():
            raise ValueError(f"error must be one of {', '.join(http_error_status())}, got {fault.error!r}")
        if kind == "break":
            fault.exception = fault.exception or "modelStreamErrorException"
            if fault.exception not in stream_exception_types():
                raise ValueError(f"exception must be one of {', '.join(stream_exception_types())}, "
                                 f"got {fault.exception!r}")
        if kind in ("break", "drop") and fault.after_deltas is None:
            fault.after_deltas = 2
        if fault.after_deltas is not None:
            fault.after_deltas = _number("after_deltas", fault.after_deltas, int, minimum=0)
        if kind == "stall":
            fault.seconds = _number("seconds", fault.seconds, float, minimum=0)
        if kind == "slow":
            fault.chunk_delay_s = _number("chunk_delay_s", fault.chunk_delay_s, float, minimum=0)
        return fault

    def matches(self, model_id: str) -> bool:
        return self.model_id is None or self.model_id in (model_id, resource_id(model_id))

    def to_dict(self) -> dict[str, Any]:
        """The fault's non-null fields (a recorded fault has no count; `faults()` shows what is left of it)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def resource_id(model_id: str) -> str:
    """`arn:aws:bedrock:REGION:ACCOUNT:inference-profile/ID` -> `ID`; a plain id is itself."""
    if model_id.startswith("arn:"):
        resource = model_id.split(":", 5)[-1]
        return resource.split("/", 1)[-1]
    return model_id


__all__ = [
    "DEFAULT_MESSAGES", "ENV_PREFIX", "FAULT_KINDS", "Fault", "MSG_ALTERNATE", "MSG_FIRST_USER", "MSG_INVALID_MODEL",
    "MSG_TOO_LONG", "StandInConfig", "http_error_status", "inference_bounds", "resource_id",
    "stream_exception_types", "tokens",
]
