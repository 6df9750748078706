"""Starter sessions: one per user and agent slug, in the user's home container, settled race-free."""

from __future__ import annotations

from typing import TypeGuard

from chatkeep import clock, ids
from chatkeep.auth import Principal
from chatkeep.errors import NotFound, ServiceUnavailable
from chatkeep.models import Container, Session, SessionStatus
from chatkeep.observability import count
from chatkeep.repository.base import IdCollision
from chatkeep.rules.base import ID_ATTEMPTS, ServiceBase, with_fresh_ids

STARTER_TITLE = "New Chat"


class StarterRules(ServiceBase):
    def starter_session(self, principal: Principal, slug: str | None) -> Session:
        """One per (user, slug), race-free: the pointer and the session are written in one transaction
        that only the first caller wins; the others read the winner's pointer."""
        ws, sub = principal.workspace_id, principal.sub
        now = clock.now()

        def live(session: Session | None) -> TypeGuard[Session]:
            return session is not None and session.purge_at > now and session.status(now) is SessionStatus.ACTIVE

        if slug is not None:
            # The default agent's slug names the same agent as null: one starter, keyed as the default's. Another
            # agent's existing starter still costs two reads; only the default's slug pays to learn it is the default.
            _, session = self.repo.get_starter(ws, sub, slug)
            if live(session):
                return session
            default = self.repo.get_agent_by_slug(ws, None)
            slug = None if default is not None and default.slug == slug else slug
        for _ in range(ID_ATTEMPTS):
            sid, session = self.repo.get_starter(ws, sub, slug)
            if live(session):
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
                agent_managed=bool(agent and agent.managed),
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
