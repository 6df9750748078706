"""Messages: post (to a session, or to a channel with the session it starts), read a session's history."""

from __future__ import annotations

from typing import Any

from chatkeep import clock, ids, limits
from chatkeep.auth import Principal
from chatkeep.errors import BadInput, Forbidden, NotFound, SessionClosed, SessionExpired
from chatkeep.models import Message, MessagePage, Role, Session, SessionStatus, Turn, TurnStatus
from chatkeep.rules.base import logger, with_fresh_ids
from chatkeep.rules.sessions import FirstMessage, SessionRules


class MessageRules(SessionRules):
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

        # A user message to a session whose agent is managed starts the agent's turn, in the same write.
        turn_id = ids.new_id() if session.agent_managed and role is Role.USER else None

        def attempt() -> Message:
            message = self._new_message(principal, session, content, role, metadata, stamp)
            self.repo.post_message(message, owner_condition=self.owner_condition(principal), now=now,
                                   activity_at=stamp, retention=retention, turn_id=turn_id)
            return message

        # Not counted here: the stream processor counts every message that lands (StreamMessagesCounted, one
        # EMF line per batch), which spares each post a metrics flush (~15 us CPU and a log line).
        message = with_fresh_ids(attempt)
        session.last_activity_at = session.updated_at = stamp
        session.expires_at_epoch = int(now) + session.idle_timeout
        session.purge_at = int(session.expires_at_epoch) + retention
        if turn_id is not None:
            session.turn = Turn(id=turn_id, status=TurnStatus.QUEUED, message_id=message.id)
        # DEBUG, not INFO: posts are the busiest write, counted by the stream's StreamMessagesCounted metric
        # and recorded by the API's access log; a JSON line each was ~15% of a post's CPU.
        # POWERTOOLS_LOGGER_SAMPLE_RATE (or LOG_LEVEL=DEBUG) brings them back for a share of requests.
        logger.debug("message posted", extra={"session_id": sid, "message_id": message.id, "role": role.value})
        return message, session

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
                    # A reference to a message that is not there (REST 404). The session is checked first, so a
                    # session the caller cannot see answers as one, whether or not the message is in it (else
                    # the two answers would tell which messages another user's session holds).
                    self.get_session_only(principal, sid)
                    raise NotFound(f"'{name}': message {ids.encode(ids.Kind.MESSAGE, mid)} not found in this session")
                bounds[name] = position[1]
        session, messages, has_more = self.repo.list_messages(
            ws, sid, limit=limit, newest_first=order == "desc", after_sk=bounds["after"],
            before_sk=bounds["before"])
        self._live(principal, session, clock.now())
        return MessagePage(messages, has_more)
