"""Ids: random integers below 2^31 (GraphQL Int), shown over REST as kind prefix + Crockford base32."""

from __future__ import annotations

import functools
import secrets
from enum import StrEnum

from chatkeep.errors import BadInput

MAX_ID = 2**31 - 1
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
# Crockford's decoding is forgiving about look-alike letters.
_DECODE.update({"o": 0, "i": 1, "l": 1})


class Kind(StrEnum):
    SESSION = "ses"
    CHANNEL = "ch"
    AGENT = "agt"
    MESSAGE = "msg"
    TURN = "trn"


# Crockford digits -> the digits int(..., 32) reads; every other ASCII character -> one int() refuses
# (including the whitespace, sign and underscore it would otherwise accept).
_TO_PYTHON_BASE32 = str.maketrans({chr(c): "0123456789abcdefghijklmnopqrstuv"[_DECODE[chr(c)]] if chr(c) in _DECODE
                                   else "!" for c in range(128)})
_PREFIXES = {kind: f"{kind.value}_" for kind in Kind}
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # two digits per step: ids are encoded on every response


def new_id() -> int:
    """Unguessable: 31 random bits (never 0). Uniqueness is enforced by the conditional write that uses it."""
    return secrets.randbelow(MAX_ID) + 1


@functools.lru_cache(maxsize=4096, typed=True)
def encode(kind: Kind, number: int) -> str:
    """Cached: a response repeats ids (a channel's id on each of its sessions, a session's on each message)."""
    if not 0 < number <= MAX_ID:
        raise ValueError(f"id out of range: {number}")
    digits = ""
    while number >= 32:
        number, r = divmod(number, 1024)
        digits = _PAIRS[r] + digits
    if number:
        digits = _ALPHABET[number] + digits
    return _PREFIXES[kind] + digits


def decode(kind: Kind, text: str) -> int:
    """Parse `ses_c1s` (or a plain decimal number) into the integer id; BadInput when malformed."""
    prefix = _PREFIXES[kind]
    value = text.strip().lower()
    shown = text if len(text) <= 40 else f"{text[:40]}..."
    if value.isascii() and value.isdigit():
        # ASCII only: str.isdigit() is also true for '²' and other digits int() refuses.
        number = int(value) if len(value) <= 10 else 0
    elif value.startswith(prefix) and 0 < len(value) - len(prefix) <= 7 and value.isascii():
        try:
            number = int(value[len(prefix):].translate(_TO_PYTHON_BASE32), 32)
        except ValueError:
            raise BadInput(f"malformed {kind.name.lower()} id {shown!r}: expected {prefix} + base32") from None
    else:
        raise BadInput(f"malformed {kind.name.lower()} id {shown!r}: expected {prefix} + base32")
    if not 0 < number <= MAX_ID:
        raise BadInput(f"{kind.name.lower()} id {shown!r} is out of range")
    return number


def check_number(number: float | int, what: str = "id") -> int:
    """GraphQL ids arrive as Float: accept only whole numbers in range."""
    # Range first: int() of inf or NaN (a Float literal like 1e400) raises instead of answering.
    if isinstance(number, bool) or not 0 < number <= MAX_ID or number != int(number):
        raise BadInput(f"{what} must be a whole number between 1 and {MAX_ID}")
    return int(number)
