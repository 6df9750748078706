"""The one clock of the service. Expiry and retention are tested by moving it, never by sleeping.

`CHATKEEP_CLOCK_OFFSET_SECONDS` (read at import) or `advance()` shifts it; in AWS neither is set."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

_offset_seconds: float = float(os.environ.get("CHATKEEP_CLOCK_OFFSET_SECONDS") or 0)


def now() -> float:
    """Epoch seconds."""
    return time.time() + _offset_seconds


def advance(seconds: float) -> float:
    """Move the clock forward (tests, the local runtime). Returns the new offset."""
    global _offset_seconds
    _offset_seconds += seconds
    return _offset_seconds


def set_offset(seconds: float) -> None:
    global _offset_seconds
    _offset_seconds = seconds


def offset() -> float:
    return _offset_seconds


def iso(epoch: float) -> str:
    """ISO 8601 UTC with millisecond precision and `Z` (sortable as a string)."""
    # isoformat truncates to milliseconds, as the strftime form did, at a third of its cost.
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
