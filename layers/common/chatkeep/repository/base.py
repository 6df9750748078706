"""The data-access interface the service layer depends on: domain models in, domain models out, domain errors
(chatkeep.errors) for failures. One protocol per part, ChatRepository is all of them; the DynamoDB
implementation is chatkeep.repository.dynamodb (one module per part). The search index's read side is
SessionSearch (chatkeep.repository.search_index).

`ws` is a workspace id; `owner_condition` is the owner a write must match (None: any, for a service
principal); `now` is epoch seconds of chatkeep.clock."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

from chatkeep.models import Agent, Container, Message, Session


class IdCollision(Exception):
    """A freshly drawn random id is taken: the caller draws another."""


class SessionListing(NamedTuple):
    """A page of a container's sessions, newest activity first, with the container read in the same request."""

    container: Container | None
    sessions: list[Session]
    has_more: bool
    next_cursor: str | None  # `<compact ISO time>.<base32 session id>` (chatkeep.repository.cursor)
    exact_total: int | None  # the number of sessions when the request saw them all, else None


class ContainerRepository(Protocol):
    def get_container(self, ws: str, cid: int) -> Container | None: ...
    def create_container(self, container: Container) -> None: ...
    def count_sessions(self, ws: str, cid: int, now: float, status: str | None = None, *,
                       container: Container | None = None) -> int: ...
    def list_sessions(
        self, ws: str, cid: int, now: float, *, skip: int, limit: int, status: str | None = None,
        cursor: str | None = None,
    ) -> SessionListing: ...


class SessionRepository(Protocol):
    def create_session(self, session: Session, *, owner_condition: str | None, agent_id: int | None,
                       first_message: Message | None = None) -> None: ...
    def get_session(self, ws: str, sid: int) -> Session | None: ...
    def get_sessions(self, ws: str, sids: list[int]) -> list[Session]: ...
    def update_session(self, ws: str, sid: int, *, owner_condition: str | None, now: float,
                       changes: dict[str, Any], expected_container: int | None = None,
                       agent_check: int | None = None) -> Session: ...
    def close_session(self, ws: str, sid: int, *, owner_condition: str | None, now: float,
                      closed_at: str, purge_at: int) -> Session: ...
    def delete_session(self, ws: str, sid: int, *, owner_condition: str | None, now: float) -> Session: ...
    def delete_sessions(self, ws: str, sids: list[int]) -> None: ...


class MessageRepository(Protocol):
    def post_message(self, message: Message, *, owner_condition: str | None, now: float,
                     activity_at: str, retention: int, turn_id: int | None = None) -> None: ...
    def get_session_view(self, ws: str, sid: int, *, message_limit: int, before_sk: str | None = None
                         ) -> tuple[Session | None, list[Message], bool]: ...
    def list_messages(self, ws: str, sid: int, *, limit: int, newest_first: bool,
                      after_sk: str | None, before_sk: str | None
                      ) -> tuple[Session | None, list[Message], bool]: ...
    def message_position(self, ws: str, mid: int) -> tuple[int, str] | None: ...


class AgentRepository(Protocol):
    def create_agent(self, agent: Agent, *, make_default: bool) -> None: ...
    def get_agent(self, ws: str, aid: int) -> Agent | None: ...
    def get_agent_by_slug(self, ws: str, slug: str | None) -> Agent | None: ...
    def list_agents(self, ws: str, *, limit: int, after_slug: str | None) -> tuple[list[Agent], bool]: ...


class StarterRepository(Protocol):
    def get_starter(self, ws: str, sub: str, slug: str | None) -> tuple[int | None, Session | None]: ...
    def get_home_container(self, ws: str, sub: str) -> int | None: ...
    def claim_home_container(self, ws: str, sub: str, container: Container) -> int: ...
    def create_starter(self, session: Session, *, sub: str, slug: str | None, replace_sid: int | None) -> bool: ...


class TurnRepository(Protocol):
    def cancel_turn(self, ws: str, sid: int, *, owner_condition: str | None, now: float) -> Session: ...
    def retry_turn(self, ws: str, sid: int, turn_id: int, *, owner_condition: str | None, now: float) -> Session: ...
    def workspace_usage(self, ws: str, first_day: str, last_day: str) -> list[dict[str, Any]]: ...


class ChatRepository(ContainerRepository, SessionRepository, MessageRepository, AgentRepository, StarterRepository,
                     TurnRepository, Protocol):
    """Everything the service reads and writes in the chat table."""


class SessionSearch(Protocol):
    def matching_sessions(self, workspace_id: str, container_id: int, query_words: list[str],
                          session_shards: Iterable[int] | None = None) -> dict[int, bool]:
        """{session id: every word matched a title word} of the container's sessions that match every word;
        `session_shards`: the shards the container's sessions are in (None: every shard)."""
        ...
