"""The local HTTP front when a client goes away before its answer: as API Gateway, nothing to answer and no error of
the runtime's (a test fixture giving up on a slow /_local/health used to leave a BrokenPipeError traceback)."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from chatkeep_local.http_front import FrontHandler


class _UnixFrontHandler(FrontHandler):
    disable_nagle_algorithm = False  # TCP_NODELAY does not apply to the socketpair this test talks over


class _RuntimeWhoseClientLeaves:
    """Answers after the client has closed its end (what a client's own timeout does)."""

    model_http = None

    def __init__(self, client: socket.socket) -> None:
        self.client = client

    def handle(self, method: str, target: str, *_: Any) -> tuple[int, list[tuple[str, str]], bytes, str]:
        self.client.close()
        return 200, [("content-type", "application/json")], b'{"status":"ok"}' * 1000, "_local"


class _Server:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime


def test_given_a_client_that_left_when_its_answer_is_written_then_the_runtime_logs_one_line_and_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a request whose client closes its end before the answer
    server_end, client_end = socket.socketpair()
    client_end.sendall(b"GET /_local/health HTTP/1.1\r\nHost: x\r\n\r\n")
    # When the front serves it
    with caplog.at_level(logging.INFO, logger="chatkeep_local"):
        _UnixFrontHandler(server_end, ("127.0.0.1", 1), _Server(_RuntimeWhoseClientLeaves(client_end)))
    server_end.close()
    # Then one line says so, and nothing is logged as an error
    assert any("closed the connection before the answer" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
