"""Agent turns (docs/agents.md, "Control"): cancel the turn in progress, retry after a failure or a cancel, and a
workspace's token usage. The turn itself runs in the worker (chatkeep.agents)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from chatkeep import clock, ids
from chatkeep.auth import Principal
from chatkeep.errors import Forbidden
from chatkeep.models import Session
from chatkeep.rules.base import ServiceBase

DEFAULT_USAGE_DAYS = 30


class TurnRules(ServiceBase):
    def cancel_turn(self, principal: Principal, sid: int) -> Session:
        """A queued turn ends at once; a running one stops within about a second (the worker's next write or
        watchdog read), keeping its partial reply."""
        return self.repo.cancel_turn(principal.workspace_id, sid, owner_condition=self.owner_condition(principal),
                                     now=clock.now())

    def retry_turn(self, principal: Principal, sid: int) -> Session:
        """A new turn on the latest user message, after the last one failed or was cancelled."""
        return self.repo.retry_turn(principal.workspace_id, sid, ids.new_id(),
                                    owner_condition=self.owner_condition(principal), now=clock.now())

    def workspace_usage(self, principal: Principal, first_day: date | None,
                        last_day: date | None) -> list[dict[str, Any]]:
        """Tokens per day and model, for a service principal (users see their sessions' `usage`). Any range is
        fine: the read costs one item per day and model that had turns, whatever the days in between."""
        if not principal.is_service:
            raise Forbidden("workspace usage needs the chatkeep/service scope")
        last = last_day or date.fromisoformat(clock.iso(clock.now())[:10])
        first = first_day or last - timedelta(days=DEFAULT_USAGE_DAYS - 1)
        if first > last:
            return []
        return self.repo.workspace_usage(principal.workspace_id, first.isoformat(), last.isoformat())
