"""Ports `chatkeep dev` listens on: a busy one is one line naming a free port above it (dev.port_advice)."""

from __future__ import annotations

import errno
import socket


class PortUnavailable(RuntimeError):
    """The port cannot be listened on (`why`); `free` is a port above it that can be now (0: none found);
    `option` is the option that sets it (--port, or --ws-port for the WebSocket API's)."""

    def __init__(self, host: str, port: int, why: str, free: int, option: str = "--port"):
        super().__init__(f"port {port} on {host} {why}")
        self.host, self.port, self.why, self.free, self.option = host, port, why, free, option


def unavailable(exc: OSError, host: str, port: int, option: str) -> Exception:
    if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
        return exc
    why = "is in use" if exc.errno == errno.EADDRINUSE else "needs privileges"
    if option == "--ws-port":
        why += " (the WebSocket API's port)"
    return PortUnavailable(host, port, why, free_port_after(host, port), option)


def free_port_after(host: str, port: int, tries: int = 50) -> int:
    """The first port above `port` that can be listened on now (0 when none of the next `tries` can)."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        with socket.socket() as probe:
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return candidate
    return 0


__all__ = ["PortUnavailable", "free_port_after", "unavailable"]
