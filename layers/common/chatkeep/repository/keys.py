"""Key builders for the chat and search tables (docs/architecture.md, "Data model"). The one place keys are spelled.

Three kinds of item would put a busy container's or workspace's writes on one partition key; each is spread over a
fixed number of keys by its session id ("Limits and scale" in docs/architecture.md says why these numbers):
search entries (`SEARCH_SHARDS` per first character of the word), the sessions' activity order in gsi1
(`ACTIVITY_SHARDS` per container) and the usage sums (`USAGE_SHARDS` per workspace)."""

from __future__ import annotations

from collections.abc import Iterable

SEARCH_SHARDS = 64  # search index keys per (container, first character of the word): a session's shard
ACTIVITY_SHARDS = 32  # gsi1 keys per container holding its sessions: a session's shard mod 32
USAGE_SHARDS = 8  # usage keys per workspace
assert SEARCH_SHARDS % ACTIVITY_SHARDS == 0  # a container's session shards name its activity keys too


def pad(number: int) -> str:
    return f"{number:010d}"


def container_pk(ws: str, cid: int) -> str:
    return f"W#{ws}#C#{pad(cid)}"


def session_pk(ws: str, sid: int) -> str:
    return f"W#{ws}#S#{pad(sid)}"


def message_sk(created_at: str, mid: int) -> str:
    return f"M#{created_at}#{pad(mid)}"


def message_lsi_sk(mid: int) -> str:
    return f"M#{pad(mid)}"


def message_claim_pk(ws: str, mid: int) -> str:
    return f"W#{ws}#MID#{pad(mid)}"


def agent_pk(ws: str, aid: int) -> str:
    return f"W#{ws}#A#{pad(aid)}"


def agents_gsi_pk(ws: str) -> str:
    return f"W#{ws}#AGENTS"


def agent_slug_pk(ws: str, slug: str) -> str:
    return f"W#{ws}#AS#{slug}"


def default_agent_pk(ws: str) -> str:
    return f"W#{ws}#AGENT_DEFAULT"


def user_pk(ws: str, sub: str) -> str:
    return f"W#{ws}#U#{sub}"


def starter_sk(slug: str | None) -> str:
    return f"STARTER#{slug or ''}"


def activity_sk(last_activity_at: str, sid: int) -> str:
    return f"A#{last_activity_at}#{pad(sid)}"


def usage_pk(ws: str, shard: int | None = None) -> str:
    """`shard` None: the single key of the layout before usage was sharded (read, never written)."""
    return f"W#{ws}#USAGE" if shard is None else f"W#{ws}#USAGE#{shard:02d}"


def usage_shard(sid: int) -> int:
    return sid % USAGE_SHARDS


def usage_pks(ws: str) -> list[str]:
    """Every key a workspace's usage may be under: the shards, and the key of the layout before them."""
    return [usage_pk(ws, k) for k in range(USAGE_SHARDS)] + [usage_pk(ws)]


def day_prefix(day: str) -> str:
    return f"D#{day}#"


def usage_sk(day: str, model: str) -> str:
    """Per workspace, day (YYYY-MM-DD, UTC) and model: one item summing the turns' tokens."""
    return f"{day_prefix(day)}M#{model}"


SESSION_SK = "S"
CONTAINER_SK = "C"
CONTAINER_GSI_SK = "~"  # sorts after every activity key: heads a descending list
MESSAGE_SK_PREFIX = "M#"
CLAIM_SK = "MID"
AGENT_SK = "A"
SLUG_SK = "AS"
HOME_SK = "HOME"


def activity_pk(ws: str, cid: int, sid: int) -> str:
    """The gsi1 key of a session: one of its container's ACTIVITY_SHARDS keys, chosen by the session id."""
    return f"{container_pk(ws, cid)}#A#{sid % ACTIVITY_SHARDS:02d}"


def activity_pks(ws: str, cid: int, session_shards: Iterable[int] | None = None) -> list[str]:
    """The gsi1 keys a container's list reads: the container's own key first (the container item, and the
    sessions written before activity was sharded), then the activity keys of `session_shards` (the container's
    record of them; None: every activity key)."""
    base = container_pk(ws, cid)
    shards = range(ACTIVITY_SHARDS) if session_shards is None else sorted({s % ACTIVITY_SHARDS for s in session_shards})
    return [base] + [f"{base}#A#{k:02d}" for k in shards]


def search_shard(sid: int) -> int:
    """A session's shard: its search keys, and (mod ACTIVITY_SHARDS) its activity key."""
    return sid % SEARCH_SHARDS


def search_pk(ws: str, cid: int, word: str, shard: int) -> str:
    """An index key: the container, the word's first character, a shard of the sessions. Every query word
    has a first character, so it names its keys exactly (SEARCH_SHARDS of them) whatever its length."""
    return f"{container_pk(ws, cid)}#I#{word[0]}#{shard:02d}"


def search_pks(ws: str, cid: int, word: str, shards: Iterable[int] | None = None) -> list[str]:
    """The keys a query word (a prefix) reads: every shard of its first character, or only `shards`."""
    return [search_pk(ws, cid, word, k) for k in (range(SEARCH_SHARDS) if shards is None else sorted(set(shards)))]


def legacy_search_pk(ws: str, cid: int) -> str:
    """The one key per container of the index layout before it was sharded (scripts/rebuild_search_index.py)."""
    return container_pk(ws, cid)


def search_sk(word: str, sid: int, field: str) -> str:
    """field: 't' (title word) or 'c' (content word)."""
    return f"{word}#{pad(sid)}#{field}"


def search_session_pk(ws: str, sid: int) -> str:
    return session_pk(ws, sid)


# ---------------------------------------------------------------- the connections table (live updates)
CONNECTION_SK = "C"


def connection_pk(connection_id: str) -> str:
    return f"C#{connection_id}"


def subscription_sk(subscription_id: str) -> str:
    return f"S#{subscription_id}"
