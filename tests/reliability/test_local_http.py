"""Issue 18, item 9: the local runtime's HTTP layer (`chatkeep dev`, what developers and the load tests run on)
answers what API Gateway answers: a body that cannot be delimited (a Content-Length or chunk size that is not a
number, a chunk cut short) is a 400 `{"message": "Bad Request"}` at once, never a 500, a traceback or a held
connection; 128 clients connecting at the same moment (the issue saw resets at 64) are all served, none reset."""

from __future__ import annotations

import socket
import threading
from typing import Any
from urllib.parse import urlparse

import pytest

# `local_api`: the run's one `chatkeep dev` (tests/conftest.py).
# The 64, doubled: 128 is also the runtime's listen backlog (with 5, 256 clients left 65 unanswered).
CLIENTS = 128
QUERY = b'{"query":"{getTodoChatSessions(todoId: 1){totalCount}}"}'


def _address(api: Any) -> tuple[str, int]:
    url = urlparse(api.base_url)
    return url.hostname or "127.0.0.1", int(url.port or 80)


def _exchange(api: Any, raw: bytes, *, half_close: bool = False, timeout: float = 10.0) -> bytes:
    """Send `raw` on a new connection; -> everything the server sent until it closed (or the timeout)."""
    with socket.create_connection(_address(api), timeout=timeout) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"the server held the connection for {timeout} s: {received[:200]!r}") from None
            if not data:
                return received
            received += data


def _request(path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _log_since(api: Any, offset: int) -> str:
    return api.log_path.read_text(encoding="utf-8", errors="replace")[offset:]


@pytest.mark.parametrize(("name", "raw", "half_close"), [
    ("content-length not a number", _request("/graphql", {"Content-Length": "abc"}, QUERY), False),
    ("content-length negative", _request("/graphql", {"Content-Length": "-1"}, QUERY), False),
    ("content-length signed", _request("/graphql", {"Content-Length": "+5"}, b"hello"), False),
    ("two content-lengths", _request("/graphql", {"Content-Length": "5", "content-length": "6"}, b"hello!"), False),
    ("chunk size not hex", _request("/graphql", {"Transfer-Encoding": "chunked"}, b"zz\r\nhello\r\n0\r\n\r\n"), False),
    ("chunk size negative", _request("/graphql", {"Transfer-Encoding": "chunked"}, b"-1\r\nx\r\n0\r\n\r\n"), False),
    ("chunk cut short", _request("/graphql", {"Transfer-Encoding": "chunked"}, b"10\r\nhello"), True),
    ("no chunk size at all", _request("/v1/channels", {"Transfer-Encoding": "chunked"}, b"\r\n"), True),
])
def test_given_a_body_that_cannot_be_delimited_then_400_bad_request_and_the_connection_closes(
        local_api: Any, name: str, raw: bytes, half_close: bool) -> None:
    offset = len(local_api.log_path.read_text(encoding="utf-8", errors="replace"))
    answer = _exchange(local_api, raw, half_close=half_close)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), (name, answer[:300])
    assert body == b'{"message":"Bad Request"}', (name, answer[:300])
    log = _log_since(local_api, offset)
    assert "Traceback" not in log and "local runtime error" not in log, (name, log[-2000:])


def test_given_valid_chunked_framing_with_an_extension_and_a_trailer_then_the_request_reaches_the_api(
        local_api: Any) -> None:
    token = local_api.token("framer", "framing-ws")
    # The query's JSON cut in two chunks, the first with a chunk extension, then a trailer field.
    first, rest = QUERY[:10], QUERY[10:]
    chunked = b"%x;name=value\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(first), first, len(rest), rest)
    raw = _request("/graphql", {"Transfer-Encoding": "chunked", "Authorization": f"Bearer {token}",
                                "Content-Type": "application/json", "Connection": "close"}, chunked)
    answer = _exchange(local_api, raw)
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"totalCount":0' in answer, answer[:500]


def test_given_128_clients_connecting_at_once_then_every_one_is_served_and_none_reset(local_api: Any) -> None:
    token = local_api.token("crowd", "crowd-ws")
    raw = _request("/graphql", {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                                "Content-Length": str(len(QUERY)), "Connection": "close"}, QUERY)
    start = threading.Barrier(CLIENTS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        start.wait()
        try:
            answer = _exchange(local_api, raw, timeout=60)
            outcome = answer.split(b"\r\n", 1)[0].decode()
        except OSError as exc:  # ConnectionResetError, ConnectionRefusedError, ...
            outcome = type(exc).__name__
        except AssertionError:
            outcome = "no answer in 60 s"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(set(outcomes)) == ["HTTP/1.1 200 OK"] and len(outcomes) == CLIENTS, \
        {o: outcomes.count(o) for o in set(outcomes)}
