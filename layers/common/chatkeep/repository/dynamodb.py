"""The DynamoDB implementation of ChatRepository (keys and access patterns: docs/architecture.md), one part per
group of the protocol (chatkeep.repository.base): containers, sessions, messages, agents, starter sessions,
agent turns.

Every method turns botocore failures into domain errors (chatkeep.repository.errors): a refused condition becomes
NotFound / SessionClosed / SessionExpired / BadInput (decided from the item DynamoDB returns with the refusal),
throttling and transient faults (after botocore's own retries) become ServiceUnavailable."""

from __future__ import annotations

from chatkeep.repository.agents import AgentAccess
from chatkeep.repository.containers import ContainerAccess
from chatkeep.repository.messages import MessageAccess
from chatkeep.repository.sessions import SessionAccess
from chatkeep.repository.starters import StarterAccess
from chatkeep.repository.turns import TurnAccess


class DynamoDBChatRepository(ContainerAccess, SessionAccess, MessageAccess, AgentAccess, StarterAccess, TurnAccess):
    """ChatRepository over the chat table: `DynamoDBChatRepository(settings=None, client=None)` (the shared
    chatkeep.aws client and the settings' table unless given)."""


__all__ = ["DynamoDBChatRepository"]
