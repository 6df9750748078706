"""Input limits, checked in the service layer so both APIs enforce the same rules with the same messages."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from chatkeep.errors import BadInput, PayloadTooLarge
from chatkeep.models import AgentProvider

MAX_TITLE = 200
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 64
MAX_METADATA_STRING = 512
MAX_METADATA_BYTES = 8 * 1024
MAX_NUMBER_DIGITS = 38  # DynamoDB numbers: 38 significant digits
# Metadata numbers: 0 or a magnitude in [MIN_NUMBER, MAX_NUMBER). One bound for integers (at most 38 digits,
# stored exactly) and other numbers, so that JSON Schema, which cannot tell 1e40 from 10**40, states it truly.
MIN_NUMBER = 1e-130  # DynamoDB's smallest magnitude
MAX_NUMBER = float(10**MAX_NUMBER_DIGITS)
MAX_CONTENT_BYTES = 32 * 1024
MAX_INITIAL_CONTEXT_BYTES = 32 * 1024
MAX_PAGE = 100
MAX_MESSAGES_PAGE = 200
MAX_DELETE_MANY = 100
# Fields one GraphQL mutation operation may run: what one request can put on the stream is bounded (issue 18:
# 20 aliased posts of 32 KB each delayed every other workspace's counts and search by minutes).
MAX_MUTATION_FIELDS = 5
MIN_IDLE_TIMEOUT = 60
MAX_IDLE_TIMEOUT = 30 * 86400
MAX_NAME = 200
MAX_MODEL = 100
MAX_SYSTEM_PROMPT_BYTES = 32 * 1024
MAX_JSON_DEPTH = 32  # request bodies and JSON values: no field of either API nests deeper than 3
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def json_depth_over(value: Any, limit: int) -> bool:
    """True when a parsed JSON value nests arrays/objects more than `limit` levels deep. Iterative: a value
    nested thousands of levels deep must be refused, not overflow the stack of whatever walks it next."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def check_title(title: str | None) -> str | None:
    if title is None:
        return None
    if len(title) > MAX_TITLE:
        raise BadInput(f"title is {len(title)} characters; the limit is {MAX_TITLE}")
    return title


def check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise BadInput("metadata must be a flat JSON object")
    if len(metadata) > MAX_METADATA_KEYS:
        raise BadInput(f"metadata has {len(metadata)} keys; the limit is {MAX_METADATA_KEYS}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise BadInput("metadata keys must be non-empty strings")
        if len(key) > MAX_METADATA_KEY:
            raise BadInput(f"metadata key {key[:20]!r}... is {len(key)} characters; the limit is {MAX_METADATA_KEY}")
        problem = metadata_value_problem(value)
        if problem:
            raise BadInput(f"metadata value of {key!r} {problem}")
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise PayloadTooLarge(f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    return dict(metadata)


def metadata_value_problem(value: Any) -> str | None:
    """Why `value` cannot be a metadata value (None when it can): a string, a boolean, null, or a number: an
    integer of at most 38 digits (stored exactly, never rounded into a float), another number 0 or of a magnitude
    in [MIN_NUMBER, MAX_NUMBER)."""
    if isinstance(value, str):
        if len(value) > MAX_METADATA_STRING:
            return f"is {len(value)} characters; the limit is {MAX_METADATA_STRING}"
    elif isinstance(value, bool) or value is None:
        return None
    elif isinstance(value, int):
        if abs(value) >= 10**MAX_NUMBER_DIGITS:
            return (f"is an integer of {len(str(abs(value)))} digits; the limit is {MAX_NUMBER_DIGITS} (integers are "
                    "stored exactly, so longer ones are refused rather than rounded)")
    elif isinstance(value, float):
        if not math.isfinite(value):  # NaN, or 1e400 parsed as inf
            return "is not a finite number"
        if value != 0 and not MIN_NUMBER <= abs(value) < MAX_NUMBER:
            return (f"is out of range: numbers are 0 or of a magnitude between {MIN_NUMBER} and {MAX_NUMBER} "
                    f"(integers: at most {MAX_NUMBER_DIGITS} digits)")
    else:
        return "must be a string, number, boolean or null (metadata is flat: no objects or arrays)"
    return None


def check_content(content: Any) -> str:
    if not isinstance(content, str) or not content.strip():
        raise BadInput("message content must be a non-empty string")
    size = len(content.encode("utf-8", "surrogatepass"))
    if size > MAX_CONTENT_BYTES:
        raise PayloadTooLarge(f"message content is {size} bytes; the limit is {MAX_CONTENT_BYTES}")
    return content


def check_text(value: str | None, what: str, max_bytes: int) -> str | None:
    if value is None:
        return None
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise PayloadTooLarge(f"{what} is {size} bytes; the limit is {max_bytes}")
    return value


def check_idle_timeout(seconds: int | None) -> int | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not MIN_IDLE_TIMEOUT <= seconds <= MAX_IDLE_TIMEOUT:
        raise BadInput(f"idle_timeout_seconds must be between {MIN_IDLE_TIMEOUT} and {MAX_IDLE_TIMEOUT}")
    return int(seconds)


def check_limit(limit: int | None, default: int, maximum: int = MAX_PAGE) -> int:
    if limit is None:
        return default
    if isinstance(limit, bool) or not 1 <= limit <= maximum:
        raise BadInput(f"limit must be between 1 and {maximum}")
    return int(limit)


def check_offset(offset: int | None) -> int:
    if offset is None:
        return 0
    if isinstance(offset, bool) or not 0 <= offset <= 10_000:
        raise BadInput("offset must be between 0 and 10000")
    return int(offset)


def check_temperature(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not 0 <= value <= 2:
        raise BadInput("temperature must be between 0 and 2")
    return float(value)


def check_slug(slug: str) -> str:
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise BadInput("slug must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit")
    return slug


OUTPUT_TOKENS = (1, 64_000)  # a bedrock agent's max_output_tokens (Converse inferenceConfig.maxTokens)
HISTORY_WINDOW_TOKENS = (256, 1_000_000)  # how much history a bedrock agent's model is sent, newest first


def check_provider(value: str | None) -> AgentProvider:
    if value is None:
        return AgentProvider.EXTERNAL
    try:
        return AgentProvider(value)
    except ValueError:
        raise BadInput("provider must be 'external' or 'bedrock'") from None


def check_range(value: int | None, what: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInput(f"{what} must be a whole number from {low} to {high}")
    return value
