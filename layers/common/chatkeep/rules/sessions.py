"""Sessions: create (per API policy), read, list, update, close, delete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatkeep import clock, ids, limits
from chatkeep.auth import Principal
from chatkeep.errors import BadInput, NotFound
from chatkeep.models import (
    BotConfig,
    Message,
    Role,
    Session,
    SessionPage,
    SessionStatus,
    SessionView,
    Turn,
    TurnStatus,
)
from chatkeep.observability import count
from chatkeep.repository.base import SessionListing
from chatkeep.rules.base import UNSET, logger, with_fresh_ids
from chatkeep.rules.containers import ContainerRules


@dataclass(slots=True)
class FirstMessage:
    """A user message to write in the transaction that creates its session; `message` is what was written."""
    content: str
    metadata: dict[str, Any] | None
    message: Message | None = None


@dataclass(slots=True)
class NewSession:
    """The checked fields of a session to create."""
    title: str | None
    agent_id: int | None
    ui_layout: str
    metadata: dict[str, Any]
    initial_context: str | None
    idle_timeout: int


class SessionRules(ContainerRules):
    def create_session(
        self, principal: Principal, container_id: int, *, title: str | None = None, agent_id: int | None = None,
        ui_layout: str = "DEFAULT", metadata: Any = None, initial_context: str | None = None,
        idle_timeout: int | None = None,
    ) -> Session:
        """GraphQL: the first write claims an unused todo (1 request). A service principal writing to a user's
        todo creates the session for that user (the todo's owner; 2 requests)."""
        fields = self._new_session(title, agent_id, ui_layout, metadata, initial_context, idle_timeout)
        owner = principal.owner_tag
        if principal.is_service:
            container = self.repo.get_container(principal.workspace_id, container_id)
            if self._todo_in_view(principal, container):
                assert container is not None
                owner = container.owner
                fields.agent_id = container.agent_id if fields.agent_id is None else fields.agent_id
        return self._write_session(principal, container_id, owner, fields, None)

    def create_channel_session(
        self, principal: Principal, container_id: int, *, title: str | None = None, agent_id: int | None = None,
        metadata: Any = None, initial_context: str | None = None, idle_timeout: int | None = None,
        first_message: FirstMessage | None = None,
    ) -> Session:
        """REST: the channel must exist and its agent is the default (2 requests). A service principal writing to
        a user's channel creates the session for that user (the channel's owner). `first_message` (already
        checked) is written in the same transaction, so a session made to carry a message never exists without
        it."""
        fields = self._new_session(title, agent_id, "DEFAULT", metadata, initial_context, idle_timeout)
        channel = self._channel_in_view(principal, self.repo.get_container(principal.workspace_id, container_id))
        fields.agent_id = channel.agent_id if fields.agent_id is None else fields.agent_id
        return self._write_session(principal, container_id, channel.owner, fields, first_message)

    def _new_session(self, title: str | None, agent_id: int | None, ui_layout: str, metadata: Any,
                     initial_context: str | None, idle_timeout: int | None) -> NewSession:
        """The fields of a new session, checked (before anything is read)."""
        return NewSession(
            title=limits.check_title(title), agent_id=agent_id, ui_layout=ui_layout,
            metadata=limits.check_metadata(metadata),
            initial_context=limits.check_text(initial_context, "initial_context", limits.MAX_INITIAL_CONTEXT_BYTES),
            idle_timeout=limits.check_idle_timeout(idle_timeout) or self.settings.session_idle_timeout_seconds)

    def _write_session(self, principal: Principal, container_id: int, owner: str, fields: NewSession,
                       first_message: FirstMessage | None) -> Session:
        managed = fields.agent_id is not None and self._agent_is_managed(principal.workspace_id, fields.agent_id)
        now = clock.now()
        stamp = clock.iso(now)

        def attempt() -> Session:
            session = Session(
                id=ids.new_id(), workspace_id=principal.workspace_id, container_id=container_id, owner=owner,
                created_at=stamp, updated_at=stamp, last_activity_at=stamp, idle_timeout=fields.idle_timeout,
                expires_at_epoch=int(now) + fields.idle_timeout, title=fields.title, agent_id=fields.agent_id,
                ui_layout=fields.ui_layout, metadata=fields.metadata, initial_context=fields.initial_context,
                agent_managed=managed,
            )
            session.purge_at = int(session.expires_at_epoch) + self._retention()
            message = None
            if first_message is not None:
                message = first_message.message = self._new_message(
                    principal, session, first_message.content, Role.USER, first_message.metadata, stamp)
                if managed:  # the first message starts the agent's turn, in the same write
                    session.turn = Turn(id=ids.new_id(), status=TurnStatus.QUEUED, message_id=message.id)
            self.repo.create_session(session, owner_condition=self.owner_condition(principal),
                                     agent_id=fields.agent_id, first_message=message)
            return session

        session = with_fresh_ids(attempt)
        count("SessionsCreated")
        logger.info("session created", extra={"session_id": session.id, "container_id": container_id})
        return session

    def _agent_is_managed(self, ws: str, agent_id: int) -> bool:
        """Whether the agent answers through chatkeep (bedrock): a session remembers it, so a post needs no
        agent read. Agents never change provider and are never deleted, so the copy stays true."""
        agent = self.repo.get_agent(ws, agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} not found")
        return agent.managed

    def get_session(self, principal: Principal, sid: int, *, message_limit: int = limits.MAX_MESSAGES_PAGE,
                    before_message_id: int | None = None) -> SessionView:
        """The session and its newest messages in one Query (the guide's details call)."""
        message_limit = limits.check_limit(message_limit, limits.MAX_MESSAGES_PAGE, limits.MAX_MESSAGES_PAGE)
        before_sk = None
        if before_message_id is not None:
            position = self.repo.message_position(principal.workspace_id, before_message_id)
            if position is None or position[0] != sid:
                self.get_session_only(principal, sid)  # a session the caller cannot see answers as one
                raise BadInput("'before' does not name a message of this session")
            before_sk = position[1]
        session, messages, has_more = self.repo.get_session_view(
            principal.workspace_id, sid, message_limit=message_limit, before_sk=before_sk)
        return SessionView(self._live(principal, session, clock.now()), messages, has_more)

    def get_session_only(self, principal: Principal, sid: int) -> Session:
        return self._live(principal, self.repo.get_session(principal.workspace_id, sid), clock.now())

    def list_sessions(self, principal: Principal, container_id: int, *, limit: int | None = None,
                      offset: int | None = None, cursor: str | None = None, status: str | None = None) -> SessionPage:
        """GraphQL: a todo never used reads as empty. `cursor`: a page's `next_cursor`."""
        listing, total = self._list(principal, container_id, limit, offset, cursor, status)
        if not self._todo_in_view(principal, listing.container):
            return SessionPage([], 0, False, None)
        return SessionPage(listing.sessions, total(), listing.has_more, listing.next_cursor)

    def list_channel_sessions(self, principal: Principal, container_id: int, *, limit: int | None = None,
                              cursor: str | None = None, status: str | None = None) -> SessionPage:
        """REST: NotFound for a channel that does not exist. `cursor`: a page's `next_cursor`."""
        listing, total = self._list(principal, container_id, limit, None, cursor, status)
        self._channel_in_view(principal, listing.container)
        return SessionPage(listing.sessions, total(), listing.has_more, listing.next_cursor)

    def _list(self, principal: Principal, container_id: int, limit: int | None, offset: int | None,
              cursor: str | None, status: str | None) -> tuple[SessionListing, Callable[[], int]]:
        """A page of the container's sessions (the container's gsi1 keys, with the container), and its total
        count (read only when the Queries did not see them all)."""
        limit = limits.check_limit(limit, 20)
        skip = limits.check_offset(offset)
        if status is not None and status not in {s.value for s in SessionStatus}:
            raise BadInput("status must be one of active, expired, closed")
        now = clock.now()
        ws = principal.workspace_id
        listing = self.repo.list_sessions(ws, container_id, now, skip=skip, limit=limit, status=status,
                                          cursor=cursor)

        def total() -> int:
            if listing.exact_total is not None:
                return listing.exact_total
            return self.repo.count_sessions(ws, container_id, now, status, container=listing.container)

        return listing, total

    def update_session(self, principal: Principal, sid: int, *, title: Any = UNSET, agent_id: Any = UNSET,
                       ui_layout: Any = UNSET, metadata: Any = UNSET, container_id: int | None = None) -> Session:
        changes: dict[str, Any] = {}
        if title is not UNSET:
            changes["title"] = limits.check_title(title)
        if agent_id is not UNSET:
            changes["agent_id"] = agent_id
            managed = agent_id is not None and self._agent_is_managed(principal.workspace_id, agent_id)
            changes["agent_managed"] = True if managed else None
        if ui_layout is not UNSET and ui_layout is not None:
            changes["ui_layout"] = ui_layout
        if metadata is not UNSET:
            changes["metadata"] = limits.check_metadata(metadata)
        now = clock.now()
        changes["updated_at"] = clock.iso(now)
        try:
            return self.repo.update_session(
                principal.workspace_id, sid, owner_condition=self.owner_condition(principal), now=now,
                changes=changes, expected_container=container_id,
                agent_check=agent_id if agent_id not in (UNSET, None) else None)
        except BadInput:
            raise BadInput("todoId cannot move a session to another todo") from None

    def update_bot_config(self, principal: Principal, sid: int, *, bot_id: int, model: str | None,
                          temperature: float | None) -> Session:
        model = limits.check_text(model, "model", limits.MAX_MODEL)
        temperature = limits.check_temperature(temperature)
        now = clock.now()
        config = BotConfig(bot_id=bot_id, model=model, temperature=temperature)
        return self.repo.update_session(
            principal.workspace_id, sid, owner_condition=self.owner_condition(principal), now=now,
            changes={"bot_config": {"bot_id": config.bot_id, "model": config.model,
                                    "temperature": config.temperature},
                     "updated_at": clock.iso(now)},
            agent_check=bot_id)

    def close_session(self, principal: Principal, sid: int) -> Session:
        now = clock.now()
        return self.repo.close_session(principal.workspace_id, sid, owner_condition=self.owner_condition(principal),
                                       now=now, closed_at=clock.iso(now), purge_at=int(now) + self._retention())

    def delete_session(self, principal: Principal, sid: int) -> Session:
        session = self.repo.delete_session(principal.workspace_id, sid,
                                           owner_condition=self.owner_condition(principal), now=clock.now())
        logger.info("session deleted", extra={"session_id": sid})
        return session

    def delete_sessions(self, principal: Principal, sids: list[int]) -> int:
        """Deletes the caller's sessions among `sids`; others' and unknown ids are skipped, not revealed.
        ceil(k/100) BatchGetItem + ceil(k/25) BatchWriteItem."""
        if len(sids) > limits.MAX_DELETE_MANY:
            raise BadInput(f"at most {limits.MAX_DELETE_MANY} ids per call")
        wanted = [ids.check_number(s, "id") for s in sids]
        now = clock.now()
        mine = [s.id for s in self.repo.get_sessions(principal.workspace_id, wanted)
                if s.purge_at > now and self.visible(principal, s.owner)]
        if mine:
            self.repo.delete_sessions(principal.workspace_id, mine)
        logger.info("sessions deleted", extra={"count": len(mine), "asked": len(wanted)})
        return len(mine)
