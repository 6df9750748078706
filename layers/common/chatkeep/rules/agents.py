"""Agents: created by service principals, read by anyone in the workspace."""

from __future__ import annotations

from chatkeep import clock, ids, limits
from chatkeep.auth import Principal
from chatkeep.errors import BadInput, Forbidden, NotFound
from chatkeep.models import Agent, AgentProvider
from chatkeep.rules.base import ServiceBase, with_fresh_ids


class AgentRules(ServiceBase):
    def create_agent(self, principal: Principal, *, slug: str, name: str, model: str | None = None,
                     temperature: float | None = None, system_prompt: str | None = None,
                     is_default: bool = False, provider: str | None = None, max_output_tokens: int | None = None,
                     history_window_tokens: int | None = None) -> Agent:
        if not principal.is_service:
            raise Forbidden("creating an agent needs the chatkeep/service scope")
        slug = limits.check_slug(slug)
        if not isinstance(name, str) or not name.strip():
            raise BadInput("name must be a non-empty string")
        limits.check_text(name, "name", limits.MAX_NAME)
        limits.check_text(model, "model", limits.MAX_MODEL)
        limits.check_text(system_prompt, "system_prompt", limits.MAX_SYSTEM_PROMPT_BYTES)
        temperature = limits.check_temperature(temperature)
        kind = limits.check_provider(provider)
        if kind is AgentProvider.BEDROCK:
            if not model:
                raise BadInput("model is required for a bedrock agent: a Bedrock model or inference-profile id")
            if not self.settings.model_allowed(model):
                allowed = ", ".join(self.settings.allowed_model_ids) or "none (AllowedModelIds is empty)"
                raise BadInput(f"model {model!r} is not allowed in this deployment; allowed: {allowed}")
        max_output_tokens = limits.check_range(max_output_tokens, "max_output_tokens", *limits.OUTPUT_TOKENS)
        history_window_tokens = limits.check_range(history_window_tokens, "history_window_tokens",
                                                   *limits.HISTORY_WINDOW_TOKENS)
        ws = principal.workspace_id
        make_default = is_default or self.repo.get_agent_by_slug(ws, None) is None
        stamp = clock.iso(clock.now())

        def attempt() -> Agent:
            agent = Agent(id=ids.new_id(), workspace_id=ws, slug=slug, name=name, created_at=stamp, model=model,
                          temperature=temperature, system_prompt=system_prompt, is_default=make_default,
                          provider=kind, max_output_tokens=max_output_tokens,
                          history_window_tokens=history_window_tokens)
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
