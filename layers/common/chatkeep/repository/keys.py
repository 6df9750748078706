"""Key builders for the chat and search tables (docs/architecture.md, "Data model"). The one place keys are spelled."""

from __future__ import annotations


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


def usage_pk(ws: str) -> str:
    return f"W#{ws}#USAGE"


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


def search_pk(ws: str, cid: int) -> str:
    return container_pk(ws, cid)


def search_sk(word: str, sid: int, field: str) -> str:
    """field: 't' (title word) or 'c' (content word)."""
    return f"{word}#{pad(sid)}#{field}"


def search_session_pk(ws: str, sid: int) -> str:
    return session_pk(ws, sid)
