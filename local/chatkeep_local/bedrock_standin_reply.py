"""What the Bedrock stand-in answers one request with, in wire terms: an HTTP error as Bedrock shapes it, or the
frames of a ConverseStream event stream (with the delays, stalls and cuts its faults ask for)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chatkeep_local import eventstream
from chatkeep_local.bedrock_standin_config import http_error_status


@dataclass
class ErrorReply:
    """An HTTP error as Bedrock answers it: status, `x-amzn-ErrorType`, JSON `{"message": ...}`."""

    error_type: str
    message: str

    @property
    def status(self) -> int:
        return http_error_status()[self.error_type]


@dataclass
class StreamReply:
    """A 200 event stream: the frames, with the delays and any stall, break or drop a fault asked for."""

    chunks: list[str]
    stop_reason: str
    input_tokens: int
    output_tokens: int
    chunk_delay_s: float
    hold_s: float = 0.0  # before the response (a stall with after_deltas null)
    stall: tuple[int, float] | None = None  # (after N deltas, seconds)
    cut: tuple[int, str | None, str] | None = None  # (after N deltas, exception type or None to drop, message)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    @property
    def planned_outcome(self) -> str:
        if self.cut is None:
            return self.stop_reason
        return f"break:{self.cut[1]}" if self.cut[1] else "drop"

    def frames(self, started: float, wait: Callable[[float], Any],
               on_delta: Callable[[], Any] | None = None) -> Iterator[bytes | None]:
        """The event-stream messages in order, waiting between them; None means: cut the connection now.
        `started` (time.monotonic()) is when the request arrived, for metrics.latencyMs. `on_delta` runs once a
        delta has been taken (written) by the caller, before the next wait."""
        yield eventstream.event("messageStart", _padded({"role": "assistant"}))
        for sent in range(len(self.chunks) + 1):
            if self.stall is not None and min(self.stall[0], len(self.chunks)) == sent:
                wait(self.stall[1])
            if self.cut is not None and min(self.cut[0], len(self.chunks)) == sent:
                _, exception_type, message = self.cut
                yield eventstream.exception(exception_type, {"message": message}) if exception_type else None
                return
            if sent == len(self.chunks):
                break
            wait(self.chunk_delay_s)
            yield eventstream.event(
                "contentBlockDelta", _padded({"contentBlockIndex": 0, "delta": {"text": self.chunks[sent]}})
            )
            if on_delta is not None:
                on_delta()
        yield eventstream.event("contentBlockStop", _padded({"contentBlockIndex": 0}))
        yield eventstream.event("messageStop", _padded({"stopReason": self.stop_reason}))
        usage = {"inputTokens": self.input_tokens, "outputTokens": self.output_tokens,
                 "totalTokens": self.input_tokens + self.output_tokens}
        latency_ms = int((time.monotonic() - started) * 1000)
        yield eventstream.event("metadata", _padded({"usage": usage, "metrics": {"latencyMs": latency_ms}}))


def _padded(payload: dict[str, Any]) -> dict[str, Any]:
    # Bedrock pads every event with a trailing "p" field of varying length (so sizes do not leak the text);
    # clients must ignore it, as botocore does. Deterministic here.
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return {**payload, "p": alphabet[: 1 + len(json.dumps(payload)) % len(alphabet)]}


def split_chunks(text: str, count: int) -> list[str]:
    """`text` in at most `count` word-aligned pieces that concatenate back to it."""
    words = re.findall(r"\S+\s*", text)
    if not words:
        return [text] if text else []
    count = min(count, len(words))
    size, extra = divmod(len(words), count)
    pieces, at = [], 0
    for i in range(count):
        n = size + (1 if i < extra else 0)
        pieces.append("".join(words[at: at + n]))
        at += n
    pieces[0] = text[: len(text) - len(text.lstrip())] + pieces[0]  # leading whitespace, if any
    return pieces


__all__ = ["ErrorReply", "StreamReply", "split_chunks"]
