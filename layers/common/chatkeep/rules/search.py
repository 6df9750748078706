"""Search: a container's sessions by title and message words (the index the stream function writes)."""

from __future__ import annotations

from chatkeep import clock, limits, text
from chatkeep.auth import Principal
from chatkeep.errors import BadInput
from chatkeep.models import Container, Session
from chatkeep.observability import count
from chatkeep.rules.sessions import SessionRules


class SearchRules(SessionRules):
    def search_sessions(self, principal: Principal, container_id: int, query: str | None, *,
                        limit: int | None = None) -> list[Session]:
        """GraphQL: a todo never used has no sessions to find. Every query word must match a title or message
        word as a prefix (accent- and case-insensitive). A GetItem of the container (it names the index shards
        its sessions are in), the index Queries (one per shard of the first word's, then of the matches), one
        BatchGetItem of the matching sessions."""
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
        container = self.repo.get_container(ws, container_id)
        if container is None:
            return None, []
        matches = self.search_index.matching_sessions(ws, container_id, words, container.session_shards)
        sessions = self.repo.get_sessions(ws, list(matches))
        now = clock.now()
        live = [s for s in sessions if s.purge_at > now and s.container_id == container_id]
        live.sort(key=lambda s: (not matches.get(s.id, False), _desc(s.last_activity_at)))
        return container, live[:limit]


def _desc(stamp: str) -> str:
    """Sort key that orders ISO timestamps newest first."""
    return "".join(chr(0x10FFFF - ord(c)) for c in stamp)
