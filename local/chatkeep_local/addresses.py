"""The URL of a local server from the address it is bound to."""

from __future__ import annotations

from typing import Any


def http_url(server_address: tuple[Any, ...], path: str = "") -> str:
    """`http://host:port{path}` of a bound socketserver (its address types the host as str or bytes)."""
    host, port = server_address[:2]
    return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}{path}"
