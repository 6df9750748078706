"""What every area of the domain rules shares: the repository and settings, who sees what, retention, fresh ids,
a new message. Nothing here (or in any rules module) touches boto3: storage lives behind the repository."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chatkeep import ids
from chatkeep.auth import Principal
from chatkeep.errors import NotFound, ServiceUnavailable
from chatkeep.models import Message, Role, Session
from chatkeep.repository.base import ChatRepository, IdCollision, SessionSearch
from chatkeep.settings import Settings, get_settings

logger = logging.getLogger("chatkeep.service")
ID_ATTEMPTS = 5
UNSET: Any = object()  # "not given" (distinct from None, which clears a field)


def with_fresh_ids[T](attempt: Callable[[], T]) -> T:
    """Ids are random: a collision (a conditional write refused) draws again."""
    for _ in range(ID_ATTEMPTS):
        try:
            return attempt()
        except IdCollision:
            continue
    raise ServiceUnavailable("could not allocate an id; retry")


class ServiceBase:
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
