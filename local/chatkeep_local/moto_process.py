"""The embedded moto server (DynamoDB, DynamoDB Streams, SQS) for `chatkeep dev`, in a process of its own.

In the runtime's own interpreter, moto, the handlers, the stream poller and the TTL sweeper share one GIL: under
load a stream batch of 100 took seconds instead of a tenth of one. `python -m chatkeep_local.moto_process`
installs the patches (chatkeep_local.moto_dynamodb, .moto_sqs), serves moto on 127.0.0.1 on a free port, prints
`READY <endpoint>` on stdout, prunes the stream's shard iterators itself, and exits when its parent goes away
(stdin reaches EOF, or it is re-parented). `MotoProcess` is the parent's side; `InProcessMoto` is the same
interface over moto in the parent's interpreter (`chatkeep dev --inline`, `chatkeep invoke`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("chatkeep_local")
moto_log = logging.getLogger("chatkeep_local.moto")

READY = "READY "
PRUNE_INTERVAL_S = 30.0
KEEP_SHARD_ITERATORS = 1000
START_TIMEOUT_S = 60.0
STDERR_TAIL = 40  # lines kept to explain a moto process that died
PROFILE_ENV = "CHATKEEP_MOTO_PROFILE"  # dev only: a directory for the process's profile and request counts


class MotoProcessError(RuntimeError):
    """The moto process could not start (its exit code and the tail of its stderr are in the message)."""


def install_patches() -> None:
    """moto behaving as DynamoDB and SQS do where chatkeep depends on it, and its server doing less work per
    request (see those modules)."""
    from chatkeep_local import moto_dynamodb, moto_server, moto_sqs

    moto_dynamodb.install()
    moto_sqs.install()
    moto_server.install()


def prune_shard_iterators(keep: int = KEEP_SHARD_ITERATORS) -> None:
    """moto keeps every shard iterator it ever handed out, and the stream poller asks for a new one on every
    poll (two a poll, with GetRecords' NextShardIterator): keep only the newest `keep`. Runs where moto runs."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    for account in list(dynamodbstreams_backends.keys()):
        for backend in list(dynamodbstreams_backends[account].values()):
            iterators = backend.shard_iterators
            for arn in list(iterators)[:-keep]:  # insertion order: oldest first
                iterators.pop(arn, None)


def _threaded_server() -> Any:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server


def _endpoint(server: Any) -> str:
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


# ------------------------------------------------------------------------------------------ the child


def _every(interval: float, action: Callable[[], None], name: str) -> None:
    def loop() -> None:
        while True:
            time.sleep(interval)
            try:
                action()
            except Exception:  # housekeeping must never end the process
                log.exception("%s failed", name)

    threading.Thread(target=loop, name=name, daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    """Backstop for stdin: a parent killed while a forked child of its own still holds the pipe open."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="moto-parent-watch", daemon=True).start()


def _operation(environ: dict[str, Any]) -> str:
    """`DynamoDB_20120810.GetItem` -> `GetItem`; SQS's JSON protocol likewise; else method and path."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    return f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"


class _Profiler:
    """`CHATKEEP_MOTO_PROFILE=DIR`: profile every thread of the moto process (cProfile on Python >= 3.12 sees
    all threads) and count the requests per operation; `moto.pstats` and `requests.json` are written to DIR
    when the process exits. For finding where moto's time goes under a load (docs/local-runtime.md)."""

    def __init__(self, directory: str):
        import cProfile

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        self.directory = directory
        self.counts: collections.Counter[str] = collections.Counter()
        self.profile = cProfile.Profile()
        original = DomainDispatcherApplication.__call__
        counts = self.counts

        def counted(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
            counts[_operation(environ)] += 1
            return original(app, environ, start_response)

        DomainDispatcherApplication.__call__ = counted  # type: ignore[method-assign,assignment]
        self.profile.enable()

    def write(self) -> None:
        import json

        self.profile.disable()
        os.makedirs(self.directory, exist_ok=True)
        self.profile.dump_stats(os.path.join(self.directory, "moto.pstats"))
        with open(os.path.join(self.directory, "requests.json"), "w", encoding="utf-8") as fh:
            json.dump(dict(self.counts.most_common()), fh, indent=1)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m chatkeep_local.moto_process", description=__doc__)
    parser.add_argument("--prune-interval", type=float, default=PRUNE_INTERVAL_S,
                        help="seconds between prunes of the stream's shard iterators")
    parser.add_argument("--keep-iterators", type=int, default=KEEP_SHARD_ITERATORS,
                        help="shard iterators kept by a prune (the newest)")
    args = parser.parse_args(argv)
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when moto stops (stdin EOF).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    parent = os.getppid()
    install_patches()
    profiler = _Profiler(os.environ[PROFILE_ENV]) if os.environ.get(PROFILE_ENV) else None
    server = _threaded_server()
    _every(args.prune_interval, lambda: prune_shard_iterators(args.keep_iterators), "moto-prune-shard-iterators")
    _exit_when_orphaned(parent)
    sys.stdout.write(f"{READY}{_endpoint(server)}\n")
    sys.stdout.flush()
    sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe, or is gone
    if profiler is not None:
        profiler.write()
    sys.stderr.flush()
    os._exit(0)  # moto's state is in memory only; no thread needs to finish


# ----------------------------------------------------------------------------------------- the parent


class MotoProcess:
    """`python -m chatkeep_local.moto_process` started by the runtime: `start()` (returns at once),
    `wait_ready()` -> the endpoint URL, `status()`, `stop()`. Its stderr goes to the runtime's log."""

    housekeeping: Callable[[], None] | None = None  # the process prunes its shard iterators itself

    def __init__(self, args: list[str] | None = None, start_timeout: float = START_TIMEOUT_S):
        self.args = list(args or [])  # main()'s options
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint_url: str | None = None
        self.stopping = False
        self.started_at = 0.0
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._ready = threading.Event()
        self._readers: list[threading.Thread] = []

    def start(self) -> MotoProcess:
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(  # noqa: S603 - our own module, with this interpreter
            [sys.executable, "-m", "chatkeep_local.moto_process", *self.args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            start_new_session=True,  # out of the terminal's process group: Ctrl-C stops the runtime, which stops it
        )
        for name, target in (("stdout", self._read_stdout), ("stderr", self._read_stderr)):
            reader = threading.Thread(target=target, name=f"moto-process-{name}", daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def wait_ready(self) -> str:
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + self.start_timeout
        while not self._ready.wait(0.02):
            if self.process.poll() is not None or time.monotonic() > deadline:
                for reader in self._readers:
                    reader.join(timeout=1.0)
                if self._ready.is_set():
                    break
                why = f"exited with code {self.process.returncode}" if self.process.poll() is not None \
                    else f"was not ready within {self.start_timeout:.0f}s"
                self.stop()
                raise MotoProcessError(f"the moto process (DynamoDB, SQS) {why}:\n" + self.stderr_tail())
        assert self.endpoint_url is not None
        log.debug("moto process %d ready in %.2fs", self.process.pid, time.perf_counter() - self.started_at)
        return self.endpoint_url

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail) or "(nothing on stderr)"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": "process", "pid": self.process.pid if self.process else None,
                               "alive": self.alive, "endpoint": self.endpoint_url}
        if self.process is not None and not out["alive"]:
            out["exit_code"] = self.process.returncode
            out["error"] = self.stderr_tail()
        return out

    def stop(self) -> None:
        self.stopping = True
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()  # the child exits at EOF
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith(READY) and not self._ready.is_set():
                self.endpoint_url = line[len(READY):]
                self._ready.set()
            elif line:
                moto_log.info("%s", line)

    def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self._stderr_tail.append(line)
            if self._ready.is_set():
                moto_log.warning("moto: %s", line)
        code = self.process.wait()
        if self._ready.is_set() and not self.stopping:
            log.error("the moto process (DynamoDB, SQS at %s) exited with code %s: requests to it fail until "
                      "chatkeep dev is restarted\n%s", self.endpoint_url, code, self.stderr_tail())


class InProcessMoto:
    """moto's server in this interpreter (today's placement, one process for a debugger): the same interface."""

    def __init__(self) -> None:
        self.server: Any = None
        self.endpoint_url: str | None = None

    @property
    def housekeeping(self) -> Callable[[], None]:
        return prune_shard_iterators  # the stream poller calls it: no other thread here

    def start(self) -> InProcessMoto:
        install_patches()
        self.server = _threaded_server()
        self.endpoint_url = _endpoint(self.server)
        return self

    def wait_ready(self) -> str:
        assert self.endpoint_url is not None, "start() first"
        return self.endpoint_url

    def status(self) -> dict[str, Any]:
        return {"mode": "inline", "alive": True, "endpoint": self.endpoint_url}

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):  # best effort at exit
                self.server.stop()


__all__ = ["InProcessMoto", "MotoProcess", "MotoProcessError", "install_patches", "main", "prune_shard_iterators"]

if __name__ == "__main__":
    main()
