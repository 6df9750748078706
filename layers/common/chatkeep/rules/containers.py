"""Containers: a todo (GraphQL) or channel (REST) and who may see it. The two APIs' policies differ here: a todo
need not exist before its first session, a channel must."""

from __future__ import annotations

from typing import Any

from chatkeep import clock, ids, limits
from chatkeep.auth import Principal, usable_id
from chatkeep.errors import BadInput, Forbidden, NotFound
from chatkeep.models import Container
from chatkeep.rules.base import ServiceBase, with_fresh_ids


class ContainerRules(ServiceBase):
    def create_container(self, principal: Principal, *, name: str | None, agent_id: int | None,
                         metadata: Any, owner: str | None = None) -> Container:
        """A new container with a fresh random id: the caller's, shared (a service principal), or `owner`'s (a
        service principal registering a user's container, so that no other user can claim its id first)."""
        name = limits.check_text(name, "name", limits.MAX_NAME)
        metadata = limits.check_metadata(metadata)
        owner_tag = principal.owner_tag
        if owner is not None:
            if not principal.is_service:
                raise Forbidden("only a service principal (scope chatkeep/service) may create a channel for "
                                "another user")
            if not usable_id(owner):
                raise BadInput("owner must be a user's sub: 1-128 characters of A-Z, a-z, 0-9 and _.:@|+=-")
            owner_tag = owner
        if agent_id is not None and self.repo.get_agent(principal.workspace_id, agent_id) is None:
            raise NotFound(f"agent {ids.encode(ids.Kind.AGENT, agent_id)} not found")
        created_at = clock.iso(clock.now())

        def attempt() -> Container:
            container = Container(id=ids.new_id(), workspace_id=principal.workspace_id, owner=owner_tag,
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
        container.session_count = self.repo.count_sessions(principal.workspace_id, cid, clock.now(),
                                                           container=container)
        return container

    def check_todo(self, principal: Principal, cid: int) -> None:
        """GraphQL: NotFound when the todo is someone else's (one never used may be followed: it reads as empty, and
        its sessions will be the caller's)."""
        self._todo_in_view(principal, self.repo.get_container(principal.workspace_id, cid))

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
