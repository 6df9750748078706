"""Agents: ChatRepository's agent part, over DynamoDB. Agents are immutable: the agent item, its slug item
and the workspace's default item each carry a copy."""

from __future__ import annotations

from typing import Any

from chatkeep.errors import Conflict
from chatkeep.models import Agent
from chatkeep.repository import keys
from chatkeep.repository.base import IdCollision
from chatkeep.repository.codec import to_item
from chatkeep.repository.errors import TransactionCancelled
from chatkeep.repository.items import agent_fields, agent_from_item, agent_key
from chatkeep.repository.table import GSI1, ChatTable


class AgentAccess(ChatTable):
    def create_agent(self, agent: Agent, *, make_default: bool) -> None:
        ws = agent.workspace_id
        fields = agent_fields(agent)
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": to_item({"pk": keys.agent_pk(ws, agent.id), "sk": keys.AGENT_SK,
                                      "gsi1pk": keys.agents_gsi_pk(ws), "gsi1sk": agent.slug, **fields})}},
            # The slug item carries a copy of the agent: resolving a slug is one GetItem. Agents are immutable.
            {"Put": {"TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": to_item({"pk": keys.agent_slug_pk(ws, agent.slug), "sk": keys.SLUG_SK, **fields})}},
        ]
        if make_default:
            items.append({"Put": {"TableName": self.table_name, "Item": to_item(
                {"pk": keys.default_agent_pk(ws), "sk": keys.SLUG_SK, **fields})}})
        try:
            self._call("transact_write_items", TransactItems=items)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise IdCollision from cancelled
            if cancelled.failed(1):
                raise Conflict(f"an agent with slug {agent.slug!r} already exists") from cancelled
            cancelled.unmapped()

    def get_agent(self, ws: str, aid: int) -> Agent | None:
        resp = self._call("get_item", TableName=self.table_name,
                          Key=agent_key(ws, aid))
        item = resp.get("Item")
        return agent_from_item(item) if item else None

    def get_agent_by_slug(self, ws: str, slug: str | None) -> Agent | None:
        pk = keys.agent_slug_pk(ws, slug) if slug else keys.default_agent_pk(ws)
        resp = self._call("get_item", TableName=self.table_name, Key={"pk": {"S": pk}, "sk": {"S": keys.SLUG_SK}})
        item = resp.get("Item")
        return agent_from_item(item) if item else None

    def list_agents(self, ws: str, *, limit: int, after_slug: str | None) -> tuple[list[Agent], bool]:
        values: dict[str, Any] = {":g": {"S": keys.agents_gsi_pk(ws)}}
        kce = "gsi1pk = :g"
        if after_slug:
            kce += " AND gsi1sk > :after"
            values[":after"] = {"S": after_slug}
        resp = self._call("query", TableName=self.table_name, IndexName=GSI1, KeyConditionExpression=kce,
                          ExpressionAttributeValues=values, Limit=limit + 1)
        agents = [agent_from_item(i) for i in resp.get("Items", [])]
        return agents[:limit], len(agents) > limit
