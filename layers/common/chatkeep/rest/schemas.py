"""Request and response models of the REST API: the JSON shapes of the Sessions guide (snake_case).

The models are the single source of the OpenAPI document (Powertools generates it from them) and of the
request validation. Limits that JSON Schema can express are declared here so the document tells clients
(and schemathesis) the truth; the service layer re-checks every limit with the same numbers
(chatkeep.limits), including those JSON Schema cannot express (metadata size in bytes -> 413)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)

from chatkeep import limits

# ---------------------------------------------------------------- ids

# Crockford base32 (lowercase, no i/l/o/u) of an integer in 1..2^31-1: at most 6 digits with a non-zero lead,
# or 7 digits starting with "1" (2^31 - 1 is "1zzzzzz").
_B32 = "[0-9a-hjkmnp-tv-z]"
_NUMBER = f"(?:[1-9a-hjkmnp-tv-z]{_B32}{{0,5}}|1{_B32}{{6}})"


def id_pattern(prefix: str) -> str:
    return f"^{prefix}_{_NUMBER}$"


SESSION_ID_PATTERN = id_pattern("ses")
CHANNEL_ID_PATTERN = id_pattern("ch")
AGENT_ID_PATTERN = id_pattern("agt")
MESSAGE_ID_PATTERN = id_pattern("msg")

# A page cursor: the last session's activity time (compact ISO 8601) and its id. Treat it as opaque.
CURSOR_PATTERN = rf"^[0-9]{{8}}T[0-9]{{9}}Z\.{_NUMBER}$"

# Any other text of a fixed form (chatkeep.rest.explain says what each pattern means when a value breaks it).
OWNER_PATTERN = r"^[A-Za-z0-9_.:@|+=\-]{1,128}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"

AgentIdIn = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN),
                      Field(description="An agent id (`agt_...`)", examples=["agt_1x2y3z"])]

# ---------------------------------------------------------------- metadata

# Metadata numbers (chatkeep.limits.metadata_value_problem): integers of at most 38 digits, other numbers 0 or of a
# magnitude in [1e-130, 1e38).
_MAX_INT = 10**limits.MAX_NUMBER_DIGITS - 1
_MAX_NUM = limits.MAX_NUMBER
_MIN_NUM = limits.MIN_NUMBER


def _dynamo_number(value: float) -> float:
    if value != 0 and not _MIN_NUM <= abs(value) < _MAX_NUM:
        raise ValueError(f"numbers must be 0 or have a magnitude between {_MIN_NUM} and {_MAX_NUM} (excluded)")
    return value


MetaInt = Annotated[StrictInt, Field(ge=-_MAX_INT, le=_MAX_INT)]


def _not_an_integer(value: Any) -> Any:
    """Integers are MetaInt's: one too long for it is refused, never rounded into a float (pydantic's strict
    float still takes ints)."""
    if isinstance(value, int):
        raise ValueError(f"integers have at most {limits.MAX_NUMBER_DIGITS} digits")
    return value


MetaFloat = Annotated[
    StrictFloat,
    BeforeValidator(_not_an_integer),
    Field(allow_inf_nan=False),
    AfterValidator(_dynamo_number),
    WithJsonSchema({"anyOf": [
        {"type": "number", "minimum": _MIN_NUM, "exclusiveMaximum": _MAX_NUM},
        {"type": "number", "exclusiveMinimum": -_MAX_NUM, "maximum": -_MIN_NUM},
        {"type": "number", "const": 0},
    ]}),
]
MetaString = Annotated[str, StringConstraints(max_length=limits.MAX_METADATA_STRING)]
MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_METADATA_KEY)]


def _one_message(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A refused value gets the service's one message (chatkeep.limits), not one line per member of the union."""
    try:
        return handler(value)
    except ValidationError:
        problem = limits.metadata_value_problem(value) or "is not a valid metadata value"
        raise ValueError(f"the value {problem}") from None


MetaValue = Annotated[StrictBool | MetaInt | MetaFloat | MetaString | None, WrapValidator(_one_message)]
Metadata = Annotated[
    dict[MetaKey, MetaValue],
    Field(
        max_length=limits.MAX_METADATA_KEYS,
        description=(f"Your own identifiers: a flat object of at most {limits.MAX_METADATA_KEYS} keys "
                     f"(keys <= {limits.MAX_METADATA_KEY} characters), values string (<= "
                     f"{limits.MAX_METADATA_STRING} characters), number, boolean or null; at most "
                     f"{limits.MAX_METADATA_BYTES} bytes as JSON (else 413)."),
        examples=[{"ticket": "T-1042", "user_id": "u_17"}],
    ),
]

# Non-blank text: at least one character that is not whitespace. Python's str.isspace() (which the service
# uses) also counts U+001C..U+001F as whitespace, so the pattern excludes them too.
_NON_BLANK = r"[^\s\x1c-\x1f]"

NOT_OUR_CURSOR = "not a cursor this API returned (pass next_cursor of the previous page)"
# What a value breaking each pattern is told: the rule in plain words (tests/unit/test_rest_error_messages.py
# checks that every pattern of a request has its meaning here).
PATTERN_MEANINGS = {
    **{id_pattern(prefix): f"expected {kind} id such as {prefix}_c1s (lowercase)"
       for prefix, kind in (("ses", "a session"), ("ch", "a channel"), ("agt", "an agent"), ("msg", "a message"))},
    CURSOR_PATTERN: NOT_OUR_CURSOR,
    _NON_BLANK: "must contain non-blank text",
    limits.SLUG.pattern: "must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
    OWNER_PATTERN: "must be 1-128 characters of A-Z, a-z, 0-9 and _ . : @ | + = -",
    IDEMPOTENCY_KEY_PATTERN: "must be 1-255 printable ASCII characters, no spaces",
}


def _reject_lone_surrogates(value: Any) -> Any:
    """JSON can carry "\\ud800" (a lone surrogate): valid JSON, but not storable text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_lone_surrogates(key)
            _reject_lone_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            _reject_lone_surrogates(item)
    return value


def _json_integer(value: Any) -> Any:
    """What JSON Schema calls an integer: a number with no fraction (256 or 256.0), never true or "256"
    (pydantic's lax int takes both; its strict int refuses 256.0, which /openapi.json allows)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    return value


# Integer fields: the bounds before the validator, so /openapi.json states them (after it, pydantic writes "ge").
IdleTimeout = Annotated[int, Field(ge=limits.MIN_IDLE_TIMEOUT, le=limits.MAX_IDLE_TIMEOUT),
                        BeforeValidator(_json_integer)]
OutputTokens = Annotated[int, Field(ge=limits.OUTPUT_TOKENS[0], le=limits.OUTPUT_TOKENS[1]),
                         BeforeValidator(_json_integer)]
HistoryWindowTokens = Annotated[int, Field(ge=limits.HISTORY_WINDOW_TOKENS[0], le=limits.HISTORY_WINDOW_TOKENS[1]),
                                BeforeValidator(_json_integer)]


class RequestModel(BaseModel):
    """Request bodies: unknown fields are refused (a typo like `intial_context` is an error, not a no-op)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        return _reject_lone_surrogates(data)

    def __repr__(self) -> str:
        # Bodies carry user content (message text, metadata): Powertools' router formats every route's arguments
        # into a debug line, even with debug off, and tracebacks show locals. The name alone says which body it
        # was without copying what a person wrote into logs (and is a fifth of the cost: ~3 us a post).
        return f"{type(self).__name__}(...)"


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


Timestamp = Annotated[str, Field(description="ISO 8601 UTC, e.g. 2026-03-19T12:00:00.000Z",
                                 examples=["2026-03-19T12:00:00.000Z"],
                                 json_schema_extra={"format": "date-time"})]

# ---------------------------------------------------------------- errors


class ErrorDetail(ResponseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_found, session_expired",
                      examples=["session_expired"])
    message: str = Field(description="Human-readable explanation (which limit, which field)")


class ErrorBody(ResponseModel):
    error: ErrorDetail


class GatewayError(ResponseModel):
    """What API Gateway itself answers before the function runs (JWT authorizer 401, throttling 429, body
    over 10 MB 413) or when it cannot get an answer from it (500/503)."""

    message: str = Field(examples=["Unauthorized"])
    reason: str | None = Field(default=None, description="`chatkeep dev` only: why the token was refused "
                                                         "(API Gateway says only `Unauthorized`)")


# ---------------------------------------------------------------- channels


class CreateChannelIn(RequestModel):
    name: Annotated[str, StringConstraints(max_length=limits.MAX_NAME)] | None = None
    agent_id: AgentIdIn | None = Field(default=None, description="Default agent of the channel's sessions")
    metadata: Metadata | None = None
    owner: Annotated[str, StringConstraints(pattern=OWNER_PATTERN)] | None = Field(
        default=None, description="Service principals only (else 403): the `sub` of the user the channel is for. "
                                  "Omitted: the caller's channel (a service principal's is shared by the workspace).")


class ChannelOut(ResponseModel):
    id: str = Field(examples=["ch_01hxyz"])
    name: str | None
    agent_id: str | None
    metadata: dict[str, Any]
    session_count: int = Field(description="Sessions of the channel that are not past retention")
    created_at: Timestamp


# ---------------------------------------------------------------- sessions


class CreateSessionIn(RequestModel):
    agent_id: AgentIdIn | None = Field(default=None, description="Uses the channel's default agent if omitted")
    metadata: Metadata | None = None
    initial_context: str | None = Field(
        default=None, description=f"At most {limits.MAX_INITIAL_CONTEXT_BYTES} bytes (UTF-8), else 413")
    title: Annotated[str, StringConstraints(max_length=limits.MAX_TITLE)] | None = None
    idle_timeout_seconds: IdleTimeout | None = (
        Field(default=None, description="Inactivity before the session expires (default: the deployment's, 24 h)"))


class UpdateSessionIn(RequestModel):
    """Only the fields present change; `null` clears a field (metadata becomes {})."""

    title: Annotated[str, StringConstraints(max_length=limits.MAX_TITLE)] | None = None
    metadata: Metadata | None = None
    agent_id: AgentIdIn | None = None


class UsageOut(ResponseModel):
    input_tokens: int = Field(description="Tokens the model read")
    output_tokens: int = Field(description="Tokens the model wrote")


class TurnOut(ResponseModel):
    """The agent's current (or last) turn on a session: a bedrock agent answering a user message."""

    id: str = Field(examples=["trn_1x2y3z"])
    status: Literal["queued", "running", "complete", "failed", "cancelled"]
    message_id: str = Field(description="The user message it answers")
    reply_id: str | None = Field(description="The agent's reply message, once it has one")
    error: str | None = Field(description="Failure code of a failed turn (model_throttled, model_error, ...)")
    cancel_requested: bool = Field(description="A cancel was asked and the worker has not stopped yet")


class SessionOut(ResponseModel):
    id: str = Field(examples=["ses_01hxyz"])
    channel_id: str = Field(examples=["ch_01hxyz"])
    agent_id: str | None = Field(examples=["agt_01hxyz"])
    title: str | None
    status: Literal["active", "expired", "closed"]
    message_count: int
    metadata: dict[str, Any]
    initial_context: str | None
    created_at: Timestamp
    expires_at: Timestamp
    last_message_at: Timestamp | None
    turn: TurnOut | None = Field(description="The agent's current or last turn; null when its agent never answered")
    usage: UsageOut = Field(description="Tokens of every agent turn of the session")


class SessionList(ResponseModel):
    data: list[SessionOut]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
    total_count: int = Field(description="Sessions matching the filter, over all pages")


class SessionSearchResult(ResponseModel):
    data: list[SessionOut]


# ---------------------------------------------------------------- messages

Content = Annotated[str, StringConstraints(min_length=1, pattern=_NON_BLANK),
                    Field(description=f"Non-blank text, at most {limits.MAX_CONTENT_BYTES} bytes (UTF-8), else 413")]


class PostChannelMessageIn(RequestModel):
    content: Content
    session_id: Annotated[str, StringConstraints(pattern=SESSION_ID_PATTERN)] | None = Field(
        default=None, description="A session of this channel; omitted: a new session is created")
    metadata: Metadata | None = None


class PostSessionMessageIn(RequestModel):
    content: Content
    role: Literal["user", "assistant"] = Field(
        default="user", description="`assistant` (a bot reply) needs a service principal (scope chatkeep/service)")
    metadata: Metadata | None = None


class MessageOut(ResponseModel):
    id: str = Field(examples=["msg_01hxyz"])
    session_id: str
    channel_id: str
    role: Literal["user", "assistant"]
    content: str
    metadata: dict[str, Any]
    sender_id: str | None = Field(description="The `sub` of the user who sent it; null for assistant messages")
    sender_name: str | None
    created_at: Timestamp
    status: Literal["streaming", "complete", "failed", "cancelled"] | None = Field(
        description="An agent reply's status (null for other messages): streaming while the model writes")
    model: str | None = Field(description="An agent reply's model")
    stop_reason: str | None = Field(description="Why the model stopped (end_turn, max_tokens, ...)")
    usage: UsageOut | None = Field(description="An agent reply's tokens")
    error: ErrorDetail | None = Field(description="A failed or cut-short reply's code and message")
    turn: TurnOut | None = Field(default=None, description="In a 201: the agent turn this message started")


class MessageList(ResponseModel):
    data: list[MessageOut]
    has_more: bool
    first_id: str | None = Field(description="Id of the first message of this page")
    last_id: str | None = Field(description="Id of the last message of this page (pass as after/before)")


class ChannelMessageOut(ResponseModel):
    session: SessionOut
    message: MessageOut


# ---------------------------------------------------------------- agents


Temperature = Annotated[
    float,
    Field(ge=0, le=2, allow_inf_nan=False),
    AfterValidator(_dynamo_number),
    WithJsonSchema({"anyOf": [{"type": "number", "const": 0}, {"type": "number", "minimum": _MIN_NUM, "maximum": 2}]}),
]


def _bedrock_needs_an_allowed_model(schema: dict[str, Any]) -> None:
    """In /openapi.json: a bedrock agent's model is required and is one of this deployment's AllowedModelIds
    (read when the document is built), so the document says what the API accepts."""
    from chatkeep.settings import get_settings

    allowed = list(get_settings().allowed_model_ids)
    schema["if"] = {"properties": {"provider": {"const": "bedrock"}}, "required": ["provider"]}
    schema["then"] = {"required": ["model"], "properties": {"model": {"type": "string", "enum": allowed}}}


class CreateAgentIn(RequestModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_bedrock_needs_an_allowed_model)

    slug: Annotated[str, StringConstraints(pattern=limits.SLUG.pattern)] = Field(
        description="Unique in the workspace: 1-63 of a-z, 0-9 and '-'")
    name: Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_NAME, pattern=_NON_BLANK)]
    model: Annotated[str, StringConstraints(max_length=limits.MAX_MODEL)] | None = None
    temperature: Temperature | None = None
    system_prompt: str | None = Field(
        default=None, description=f"At most {limits.MAX_SYSTEM_PROMPT_BYTES} bytes (UTF-8), else 413")
    provider: Literal["external", "bedrock"] = Field(
        default="external", description="external: your back end posts the replies; bedrock: chatkeep answers with "
                                        "Amazon Bedrock (model must be one of the deployment's AllowedModelIds)")
    max_output_tokens: OutputTokens | None = (
        Field(default=None, description="bedrock agents: the reply's cap (default 1024)"))
    history_window_tokens: HistoryWindowTokens | None = (
        Field(default=None, description="bedrock agents: history sent to the model, newest first (default 8000)"))


class AgentOut(ResponseModel):
    id: str = Field(examples=["agt_01hxyz"])
    slug: str
    name: str
    model: str | None
    temperature: float | None
    system_prompt: str | None = Field(description="Service principals only (scope chatkeep/service): null for "
                                                  "users, from whom apps keep their agents' instructions")
    created_at: Timestamp
    provider: Literal["external", "bedrock"]
    max_output_tokens: int | None
    history_window_tokens: int | None


class AgentList(ResponseModel):
    data: list[AgentOut]
    has_more: bool
    next_cursor: str | None


# ---------------------------------------------------------------- usage


class UsageRow(ResponseModel):
    day: str = Field(description="UTC day, YYYY-MM-DD", examples=["2026-12-03"])
    model: str
    turns: int
    input_tokens: int
    output_tokens: int


class UsageList(ResponseModel):
    data: list[UsageRow] = Field(description="One row per day and model, days ascending")
