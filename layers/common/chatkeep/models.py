"""Domain models: what the service layer and the repository exchange. Plain slotted dataclasses
(cheap to build on every request); the API layers shape them into GraphQL/REST responses."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class SessionStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    CLOSED = "closed"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class AgentProvider(StrEnum):
    """Who answers: the app's own backend (posts replies with a service token) or chatkeep on Amazon Bedrock."""

    EXTERNAL = "external"
    BEDROCK = "bedrock"


class TurnStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def in_progress(self) -> bool:
        return self in (TurnStatus.QUEUED, TurnStatus.RUNNING)


class ReplyStatus(StrEnum):
    """An agent reply's status; messages that are not managed replies have none."""

    STREAMING = "streaming"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class Turn:
    """The agent's turn on a session: at most one in progress (queued or running) at a time."""

    id: int
    status: TurnStatus
    message_id: int  # the user message it answers
    reply_id: int | None = None
    error_code: str | None = None
    cancel_requested: bool = False


@dataclass(slots=True)
class Container:
    """A todo (GraphQL) or channel (REST): the owner of a set of sessions."""

    id: int
    workspace_id: str
    owner: str  # a user's sub, or "*" when shared by a service principal
    created_at: str
    name: str | None = None
    agent_id: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    session_count: int | None = None
    # The shards (session id mod 64) of every session ever created in it: which of its spread keys can hold
    # anything (None: not recorded, a container older than the record: every key may).
    session_shards: frozenset[int] | None = None


@dataclass(slots=True)
class BotConfig:
    bot_id: int | None = None
    model: str | None = None
    temperature: float | None = None


@dataclass(slots=True)
class Session:
    id: int
    workspace_id: str
    container_id: int
    owner: str
    created_at: str
    updated_at: str
    last_activity_at: str
    idle_timeout: int
    expires_at_epoch: float
    title: str | None = None
    agent_id: int | None = None
    ui_layout: str = "DEFAULT"
    metadata: dict[str, Any] = field(default_factory=dict)
    initial_context: str | None = None
    bot_config: BotConfig | None = None
    closed_at: str | None = None
    message_count: int = 0
    last_message_at: str | None = None
    starter_key: str | None = None
    purge_at: int = 0  # epoch: past it the session is gone, even before DynamoDB's TTL deletes it
    agent_managed: bool = False  # its agent is a bedrock agent: a user message starts a turn
    turn: Turn | None = None
    usage: Usage = field(default_factory=Usage)

    def status(self, now: float) -> SessionStatus:
        if self.closed_at:
            return SessionStatus.CLOSED
        if self.expires_at_epoch <= now:
            return SessionStatus.EXPIRED
        return SessionStatus.ACTIVE


@dataclass(slots=True)
class Message:
    id: int
    workspace_id: str
    session_id: int
    container_id: int
    content: str
    role: Role
    created_at: str
    sender_sub: str | None = None
    sender_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Managed agent replies only (status None otherwise): how the reply went and what it cost.
    status: ReplyStatus | None = None
    turn_id: int | None = None
    model: str | None = None
    stop_reason: str | None = None
    usage: Usage | None = None
    latency_ms: int | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def is_bot_reply(self) -> bool:
        return self.role is Role.ASSISTANT


@dataclass(slots=True)
class Agent:
    id: int
    workspace_id: str
    slug: str
    name: str
    created_at: str
    model: str | None = None
    temperature: float | None = None
    system_prompt: str | None = None
    is_default: bool = False
    provider: AgentProvider = AgentProvider.EXTERNAL
    max_output_tokens: int | None = None  # bedrock agents: the reply's cap (inferenceConfig.maxTokens)
    history_window_tokens: int | None = None  # bedrock agents: how much history the model sees, newest first

    @property
    def managed(self) -> bool:
        return self.provider is AgentProvider.BEDROCK


@dataclass(slots=True)
class SessionPage:
    sessions: list[Session]
    total_count: int
    has_more: bool
    next_cursor: str | None = None


@dataclass(slots=True)
class MessagePage:
    messages: list[Message]  # in the order asked for
    has_more: bool


@dataclass(slots=True)
class SessionView:
    """A session with (a page of) its latest messages, chronological."""

    session: Session
    messages: list[Message]
    has_more_messages: bool


# ---------------------------------------------------------------- live updates (docs/live-updates.md)


@dataclass(slots=True)
class Connection:
    """A WebSocket connection of the live-updates API. Acknowledged once its token was verified: it then holds
    the caller (the claims chatkeep reads, as auth.Principal has them) and when the token expires."""

    id: str
    connected_at: float  # epoch seconds
    expires_at: int  # epoch: API Gateway closes a connection after 2 h; the record's TTL
    init_at: float | None = None  # when its connection_init was claimed (one per connection)
    acked: bool = False
    sub: str | None = None
    workspace_id: str | None = None
    name: str | None = None
    scopes: tuple[str, ...] = ()
    is_service: bool = False
    token_expires_at: float = 0.0


@dataclass(slots=True)
class Subscription:
    """One graphql-transport-ws subscription: its connection and operation id, the topic it follows (a session's
    or a todo's key), the client's document, and who subscribed (checked again on every event)."""

    connection_id: str
    id: str
    topic: str
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    sub: str
    is_service: bool
    token_expires_at: float
    expires_at: int
