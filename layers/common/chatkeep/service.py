"""ChatService: the domain logic both APIs call. Tenancy, ownership, lifecycle and limits live here (one module
per area in chatkeep.rules); storage lives behind the repository. Nothing here touches boto3."""

from __future__ import annotations

from functools import lru_cache

from chatkeep.rules.agents import AgentRules
from chatkeep.rules.base import UNSET
from chatkeep.rules.messages import MessageRules
from chatkeep.rules.search import SearchRules
from chatkeep.rules.sessions import FirstMessage
from chatkeep.rules.starters import StarterRules
from chatkeep.rules.turns import TurnRules


class ChatService(MessageRules, SearchRules, StarterRules, AgentRules, TurnRules):
    """The operations both APIs share, and where their policies differ, one entry point per API: GraphQL's todos
    need not exist before their first session (`create_session`, `list_sessions`, `search_sessions`), REST's
    channels must (`create_channel_session`, `list_channel_sessions`, `search_channel_sessions`).

    `ChatService(repo, search_index=None, settings=None)`: a ChatRepository, a SessionSearch (the search index
    table unless given), the settings of the environment unless given."""


@lru_cache(maxsize=1)
def default_service() -> ChatService:
    """One ChatService per warm container, shared by both APIs."""
    from chatkeep.repository.dynamodb import DynamoDBChatRepository

    return ChatService(DynamoDBChatRepository())


def reset() -> None:
    """Forget the shared ChatService (it holds the settings it was built with): tests and the local runtime
    call it, with the other modules' reset(), when they point chatkeep at other tables."""
    default_service.cache_clear()


__all__ = ["UNSET", "ChatService", "FirstMessage", "default_service", "reset"]
