"""The one clock of the service. Expiry and retention are tested by moving it, never by sleeping.

`CHATKEEP_CLOCK_OFFSET_SECONDS` (read at import) or `advance()` shifts it; in AWS neither is set."""

from __future__ import annotations

import functools
import math
import os
import time
from datetime import date, datetime, timedelta

_EPOCH = date(1970, 1, 1)
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
    """ISO 8601 UTC with millisecond precision and `Z` (sortable as a string): exactly
    `datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")` (microseconds rounded half-even as
    CPython does, then truncated), assembled from cached pieces: 0.8 us instead of 1.9, and every response
    carries one per session or message (tests/unit/test_clock.py compares the two)."""
    fraction, whole = math.modf(epoch)
    micros, seconds = round(fraction * 1e6), int(whole)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    elif micros < 0:
        seconds, micros = seconds - 1, micros + 1_000_000
    days, second_of_day = divmod(seconds, 86400)
    hours, rest = divmod(second_of_day, 3600)
    minutes, second = divmod(rest, 60)
    return (_date(days) + _TWO_DIGITS[hours] + ":" + _TWO_DIGITS[minutes] + ":" + _TWO_DIGITS[second] + "."
            + _MILLIS[micros // 1000])


_TWO_DIGITS = [f"{n:02d}" for n in range(60)]
_MILLIS = [f"{n:03d}Z" for n in range(1000)]


@functools.lru_cache(maxsize=1024)
def _date(days_since_epoch: int) -> str:
    return (_EPOCH + timedelta(days=days_since_epoch)).isoformat() + "T"


def parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
