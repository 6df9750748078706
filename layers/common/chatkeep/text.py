"""Normalisation and tokenisation shared by the search index (writes) and search queries (reads):
both sides must cut words the same way or prefixes stop matching."""

from __future__ import annotations

import re
import unicodedata

MAX_WORD_LENGTH = 64
MAX_QUERY_WORDS = 8
# Distinct words indexed per message (its first ones): what one message costs the stream is bounded (issue 18: a
# 32 KB message of 3,300 distinct words was 3,300 index writes). A chat message rarely has more; words after
# these are stored with the message but not searchable through it.
MAX_INDEXED_WORDS = 256
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Casefold and strip accents (NFKD, drop combining marks): 'Élan' -> 'elan'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str | None, limit: int | None = None) -> list[str]:
    """Distinct normalised words in first-seen order, each at most MAX_WORD_LENGTH characters; the first `limit`
    of them when given."""
    if not text:
        return []
    seen: dict[str, None] = {}
    for match in _WORD.finditer(normalise(text)):
        word = match.group(0)[:MAX_WORD_LENGTH]
        if word:
            seen.setdefault(word, None)
            if limit is not None and len(seen) >= limit:
                break
    return list(seen)
