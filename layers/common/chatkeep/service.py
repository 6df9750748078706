"""ChatService: the domain logic both APIs call. Tenancy, ownership, lifecycle and limits live here;
storage lives behind the repository. Nothing here touches boto3."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from chatkeep import clock, ids, limits, text
from chatkeep.auth import Principal
from chatkeep.errors import BadInput, Forbidden, NotFound, ServiceUnavailable, SessionClosed, SessionExpired
from chatkeep.models import (
    Agent,
    BotConfig,
    Container,
    Message,
    MessagePage,
    Role,
    Session,
    SessionPage,
    SessionStatus,
    SessionView,
)
from chatkeep.observability import count
from chatkeep.repository.base import ChatRepository, IdCollision, SessionListing, SessionSearch
from chatkeep.settings import Settings, get_settings

logger = logging.getLogger("chatkeep.service")
T = TypeVar("T")
ID_ATTEMPTS = 5
STARTER_TITLE = "New Chat"
UNSET: Any = object()  # "not given" (distinct from None, which clears a field)


def with_fresh_ids[T](attempt: Callable[[], T]) -> T:
    """Ids are random: a collision (a conditional write refused) draws again."""
    for _ in range(ID_ATTEMPTS):
        try:
            return attempt()
        except IdCollision:
            continue
    raise ServiceUnavailable("could not allocate an id; retry")


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


class ChatService:
    """The operations both APIs share, and where their policies differ, one entry point per API: GraphQL's todos
    need not exist before their first session (`create_session`, `list_sessions`, `search_sessions`), REST's
    channels must (`create_channel_session`, `list_channel_sessions`, `search_channel_sessions`)."""

    def __init__(self, repo: ChatRepository, search_index: SessionSearch | None = None,
                 settings: Settings | None = None) -> None:
        self.repo = repo
        self._search_index = search_index
        self.settings = settings or get_settings()

    @property
    def search_index(self) -> SessionSearch:
        if self._search_index is None:
            from chatkeep.repository.search_index import SearchIndex

            self._search_index = SearchIndex(self.settings)
        return self._search_index

    # ---------------------------------------------------------------- rules

    @staticmethod
    def visible(principal: Principal, owner: str) -> bool:
        return principal.is_service or owner == principal.sub

    @staticmethod
    def owner_condition(principal: Principal) -> str | None:
        """The owner a write must match: none for a service principal (it may change every container)."""
        return None if principal.is_service else principal.sub

    def _live(self, principal: Principal, session: Session | None, now: float) -> Session:
        if session is None or session.purge_at <= now or not self.visible(principal, session.owner):
            raise NotFound("session not found")
        return session

    def _retention(self) -> int:
        """Seconds a session is kept once it stops being active (expiry or close): the one owner of the rule
        (the repository's post_message is given it, to move purge_at with exp in its update)."""
        return self.settings.retention_days * 86400

    # ---------------------------------------------------------------- containers

    def create_container(self, principal: Principal, *, name: str | None, agent_id: int | None,
                         metadata: Any) -> Container:
        name = limits.check_text(name, "name", limits.MAX_NAME)
        metadata = limits.check_metadata(metadata)
        if agent_id is not None and self.repo.get_agent(principal.workspace_id, agent_id) is None:
            raise NotFound(f"agent {ids.encode(ids.Kind.AGENT, agent_id)} not found")
        created_at = clock.iso(clock.now())

        def attempt() -> Container:
            container = Container(id=ids.new_id(), workspace_id=principal.workspace_id, owner=principal.owner_tag,
                                  created_at=created_at, name=name, agent_id=agent_id, metadata=metadata)
            self.repo.create_container(container)
            return container

        container = with_fresh_ids(attempt)
        container.session_count = 0
        return container

    def get_container(self, principal: Principal, cid: int) -> Container:
        container = self.repo.get_container(principal.workspace_id, cid)
        if container is None or not self.visible(principal, container.owner):
            raise NotFound("channel not found")
        container.session_count = self.repo.count_sessions(principal.workspace_id, cid, clock.now())
        return container

    def _todo_in_view(self, principal: Principal, container: Container | None) -> bool:
        """GraphQL: a todo need not exist. False when it was never used (it reads as empty), True when the caller
        may see it; NotFound when it is someone else's."""
        if container is None:
            return False
        if not self.visible(principal, container.owner):
            raise NotFound("todo not found")
        return True

    def _channel_in_view(self, principal: Principal, container: Container | None) -> Container:
        """REST: a channel exists before its sessions. NotFound when it is absent or someone else's."""
        if container is None or not self.visible(principal, container.owner):
            raise NotFound("channel not found")
        return container

    # ---------------------------------------------------------------- sessions

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
        now = clock.now()
        stamp = clock.iso(now)

        def attempt() -> Session:
            session = Session(
                id=ids.new_id(), workspace_id=principal.workspace_id, container_id=container_id, owner=owner,
                created_at=stamp, updated_at=stamp, last_activity_at=stamp, idle_timeout=fields.idle_timeout,
                expires_at_epoch=int(now) + fields.idle_timeout, title=fields.title, agent_id=fields.agent_id,
                ui_layout=fields.ui_layout, metadata=fields.metadata, initial_context=fields.initial_context,
            )
            session.purge_at = int(session.expires_at_epoch) + self._retention()
            message = None
            if first_message is not None:
                message = first_message.message = self._new_message(
                    principal, session, first_message.content, Role.USER, first_message.metadata, stamp)
            self.repo.create_session(session, owner_condition=self.owner_condition(principal),
                                     agent_id=fields.agent_id, first_message=message)
            return session

        session = with_fresh_ids(attempt)
        count("SessionsCreated")
        logger.info("session created", extra={"session_id": session.id, "container_id": container_id})
        return session

    def get_session(self, principal: Principal, sid: int, *, message_limit: int = limits.MAX_MESSAGES_PAGE,
                    before_message_id: int | None = None) -> SessionView:
        """The session and its newest messages in one Query (the guide's details call)."""
        message_limit = limits.check_limit(message_limit, limits.MAX_MESSAGES_PAGE, limits.MAX_MESSAGES_PAGE)
        before_sk = None
        if before_message_id is not None:
            position = self.repo.message_position(principal.workspace_id, before_message_id)
            if position is None or position[0] != sid:
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
        """A page of the container's sessions (one Query with the container), and its total count (read only
        when that Query did not see them all)."""
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
            return self.repo.count_sessions(ws, container_id, now, status)

        return listing, total

    def update_session(self, principal: Principal, sid: int, *, title: Any = UNSET, agent_id: Any = UNSET,
                       ui_layout: Any = UNSET, metadata: Any = UNSET, container_id: int | None = None) -> Session:
        changes: dict[str, Any] = {}
        if title is not UNSET:
            changes["title"] = limits.check_title(title)
        if agent_id is not UNSET:
            changes["agent_id"] = agent_id
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

    # ---------------------------------------------------------------- starter sessions

    def starter_session(self, principal: Principal, slug: str | None) -> Session:
        """One per (user, slug), race-free: the pointer and the session are written in one transaction
        that only the first caller wins; the others read the winner's pointer."""
        ws, sub = principal.workspace_id, principal.sub
        now = clock.now()
        for _ in range(ID_ATTEMPTS):
            sid, session = self.repo.get_starter(ws, sub, slug)
            if session is not None and session.purge_at > now and session.status(now) is SessionStatus.ACTIVE:
                return session
            agent = self.repo.get_agent_by_slug(ws, slug)
            if slug is not None and agent is None:
                raise NotFound(f"no agent with slug {slug!r} in this workspace")
            container_id = self.repo.get_home_container(ws, sub) or self._claim_home(principal)
            stamp = clock.iso(now)
            timeout = self.settings.session_idle_timeout_seconds
            candidate = Session(
                id=ids.new_id(), workspace_id=ws, container_id=container_id, owner=principal.owner_tag,
                created_at=stamp, updated_at=stamp, last_activity_at=stamp, idle_timeout=timeout,
                expires_at_epoch=int(now) + timeout, title=STARTER_TITLE, agent_id=agent.id if agent else None,
            )
            candidate.purge_at = int(candidate.expires_at_epoch) + self._retention()
            try:
                if self.repo.create_starter(candidate, sub=sub, slug=slug, replace_sid=sid):
                    count("SessionsCreated")
                    return candidate
            except IdCollision:
                continue
            # Lost the race: the next pass reads the winner's session.
        raise ServiceUnavailable("could not settle the starter session; retry")

    def _claim_home(self, principal: Principal) -> int:
        stamp = clock.iso(clock.now())

        def attempt() -> int:
            container = Container(id=ids.new_id(), workspace_id=principal.workspace_id, owner=principal.owner_tag,
                                  created_at=stamp, name="Home")
            return self.repo.claim_home_container(principal.workspace_id, principal.sub, container)

        return with_fresh_ids(attempt)

    # ---------------------------------------------------------------- messages

    def post_message(self, principal: Principal, sid: int, *, content: Any, role: str | Role = Role.USER,
                     metadata: Any = None, session: Session | None = None) -> tuple[Message, Session]:
        """Two requests: read the session (its container, friendly errors), then one transaction whose
        condition re-checks the lifecycle, so a post racing a close or an expiry cannot land."""
        content = limits.check_content(content)
        metadata = limits.check_metadata(metadata)
        try:
            role = Role(role)
        except ValueError:
            raise BadInput("role must be 'user' or 'assistant'") from None
        if role is Role.ASSISTANT and not principal.is_service:
            raise Forbidden("only a service principal (scope chatkeep/service) may post assistant messages")
        now = clock.now()
        if session is None:  # callers that just read or created it pass it along
            session = self.get_session_only(principal, sid)
        status = session.status(now)
        if status is not SessionStatus.ACTIVE:
            # Same refusal the conditional write would give; saves a doomed transaction.
            if status is SessionStatus.CLOSED:
                raise SessionClosed("this session is closed: start a new session")
            raise SessionExpired("this session expired after inactivity: start a new session")
        stamp = clock.iso(now)
        retention = self._retention()

        def attempt() -> Message:
            message = self._new_message(principal, session, content, role, metadata, stamp)
            self.repo.post_message(message, owner_condition=self.owner_condition(principal), now=now,
                                   activity_at=stamp, retention=retention)
            return message

        # Not counted here: the stream processor counts every message that lands (StreamMessagesCounted, one
        # EMF line per batch), which spares each post a metrics flush (~15 us CPU and a log line).
        message = with_fresh_ids(attempt)
        session.last_activity_at = session.updated_at = stamp
        session.expires_at_epoch = int(now) + session.idle_timeout
        session.purge_at = int(session.expires_at_epoch) + retention
        # DEBUG, not INFO: posts are the busiest write, counted by the stream's StreamMessagesCounted metric
        # and recorded by the API's access log; a JSON line each was ~15% of a post's CPU.
        # POWERTOOLS_LOGGER_SAMPLE_RATE (or LOG_LEVEL=DEBUG) brings them back for a share of requests.
        logger.debug("message posted", extra={"session_id": sid, "message_id": message.id, "role": role.value})
        return message, session

    @staticmethod
    def _new_message(principal: Principal, session: Session, content: str, role: Role, metadata: Any,
                     stamp: str) -> Message:
        """A new message of `session`, with a freshly drawn id; a bot reply has no sender."""
        return Message(
            id=ids.new_id(), workspace_id=principal.workspace_id, session_id=session.id,
            container_id=session.container_id, content=content, role=role, created_at=stamp,
            sender_sub=None if role is Role.ASSISTANT else principal.sub,
            sender_name=None if role is Role.ASSISTANT else principal.name, metadata=metadata,
        )

    def post_to_container(self, principal: Principal, container_id: int, *, content: Any, session_id: int | None,
                          metadata: Any = None) -> tuple[Message, Session]:
        """REST: send a user message to a channel. Without a session id, the new session and its first
        message are one transaction (2 requests with the channel read): a failed post leaves no session."""
        if session_id is None:
            first = FirstMessage(content=limits.check_content(content), metadata=limits.check_metadata(metadata))
            session = self.create_channel_session(principal, container_id, first_message=first)
            assert first.message is not None  # written with the session
            return first.message, session
        session = self.get_session_only(principal, session_id)
        if session.container_id != container_id:
            raise NotFound("session not found in this channel")
        return self.post_message(principal, session_id, content=content, metadata=metadata, session=session)

    def list_messages(self, principal: Principal, sid: int, *, limit: int | None = None, order: str = "desc",
                      after: int | None = None, before: int | None = None) -> MessagePage:
        limit = limits.check_limit(limit, 20)
        if order not in ("asc", "desc"):
            raise BadInput("order must be 'asc' or 'desc'")
        ws = principal.workspace_id
        bounds: dict[str, str | None] = {"after": None, "before": None}
        for name, mid in (("after", after), ("before", before)):
            if mid is not None:
                position = self.repo.message_position(ws, mid)
                if position is None or position[0] != sid:
                    # A reference to a message that is not there (REST 404), like a session that is not there.
                    raise NotFound(f"'{name}': message {ids.encode(ids.Kind.MESSAGE, mid)} not found in this session")
                bounds[name] = position[1]
        session, messages, has_more = self.repo.list_messages(
            ws, sid, limit=limit, newest_first=order == "desc", after_sk=bounds["after"],
            before_sk=bounds["before"])
        self._live(principal, session, clock.now())
        return MessagePage(messages, has_more)

    # ---------------------------------------------------------------- search

    def search_sessions(self, principal: Principal, container_id: int, query: str | None, *,
                        limit: int | None = None) -> list[Session]:
        """GraphQL: a todo never used has no sessions to find. Every query word must match a title or message
        word as a prefix (accent- and case-insensitive). n Queries on the index + one BatchGetItem of the
        container and the matching sessions."""
        container, sessions = self._search(principal, container_id, query, limit)
        if not self._todo_in_view(principal, container):
            return []
        return sessions

    def search_channel_sessions(self, principal: Principal, container_id: int, query: str | None, *,
                                limit: int | None = None) -> list[Session]:
        """REST: as search_sessions, NotFound for a channel that does not exist."""
        container, sessions = self._search(principal, container_id, query, limit)
        self._channel_in_view(principal, container)
        return sessions

    def _search(self, principal: Principal, container_id: int, query: str | None,
                limit: int | None) -> tuple[Container | None, list[Session]]:
        """(the container, its live sessions matching `query`: title matches first, then by activity). An empty
        query lists the sessions by activity."""
        limit = limits.check_limit(limit, 100)
        words = text.words(query)
        if len(words) > text.MAX_QUERY_WORDS:
            raise BadInput(f"at most {text.MAX_QUERY_WORDS} words per search")
        if not words:
            listing, _ = self._list(principal, container_id, limit, None, None, None)
            return listing.container, listing.sessions
        ws = principal.workspace_id
        count("SearchQueries")
        matches = self.search_index.matching_sessions(ws, container_id, words)
        container, sessions = self.repo.get_container_and_sessions(ws, container_id, list(matches))
        now = clock.now()
        live = [s for s in sessions if s.purge_at > now and s.container_id == container_id]
        live.sort(key=lambda s: (not matches.get(s.id, False), _desc(s.last_activity_at)))
        return container, live[:limit]

    # ---------------------------------------------------------------- agents

    def create_agent(self, principal: Principal, *, slug: str, name: str, model: str | None = None,
                     temperature: float | None = None, system_prompt: str | None = None,
                     is_default: bool = False) -> Agent:
        if not principal.is_service:
            raise Forbidden("creating an agent needs the chatkeep/service scope")
        slug = limits.check_slug(slug)
        if not isinstance(name, str) or not name.strip():
            raise BadInput("name must be a non-empty string")
        limits.check_text(name, "name", limits.MAX_NAME)
        limits.check_text(model, "model", limits.MAX_MODEL)
        limits.check_text(system_prompt, "system_prompt", limits.MAX_SYSTEM_PROMPT_BYTES)
        temperature = limits.check_temperature(temperature)
        ws = principal.workspace_id
        make_default = is_default or self.repo.get_agent_by_slug(ws, None) is None
        stamp = clock.iso(clock.now())

        def attempt() -> Agent:
            agent = Agent(id=ids.new_id(), workspace_id=ws, slug=slug, name=name, created_at=stamp, model=model,
                          temperature=temperature, system_prompt=system_prompt, is_default=make_default)
            self.repo.create_agent(agent, make_default=make_default)
            return agent

        return with_fresh_ids(attempt)

    def get_agent(self, principal: Principal, aid: int) -> Agent:
        agent = self.repo.get_agent(principal.workspace_id, aid)
        if agent is None:
            raise NotFound("agent not found")
        return agent

    def list_agents(self, principal: Principal, *, limit: int | None = None,
                    after_slug: str | None = None) -> tuple[list[Agent], bool]:
        return self.repo.list_agents(principal.workspace_id, limit=limits.check_limit(limit, 20),
                                     after_slug=after_slug)


def _desc(stamp: str) -> str:
    """Sort key that orders ISO timestamps newest first."""
    return "".join(chr(0x10FFFF - ord(c)) for c in stamp)


@lru_cache(maxsize=1)
def default_service() -> ChatService:
    """One ChatService per warm container, shared by both APIs."""
    from chatkeep.repository.dynamodb import DynamoDBChatRepository

    return ChatService(DynamoDBChatRepository())


def reset() -> None:
    """Forget the shared ChatService (it holds the settings it was built with): tests and the local runtime
    call it, with the other modules' reset(), when they point chatkeep at other tables."""
    default_service.cache_clear()
