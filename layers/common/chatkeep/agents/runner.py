"""Running one agent turn (docs/agents.md): the worker's side of DESIGN section 8.

begin (take the turn) -> build the Converse request -> stream the model's reply into ONE assistant message
(created at the first tokens, its content persisted at most once per `persist_interval`, never per token) ->
finish (complete / failed with a stable code / cancelled) with usage, stop reason, model and latency.

- Throttling and a briefly unavailable model are retried with exponential backoff and full jitter, before the
  first token only (after it, retrying would restart a reply the client is already reading); the delays are
  recorded in `TurnResult.backoff` and slept through the injected `sleep`.
- A cancel, close, expiry or delete is noticed by the next periodic write (its condition fails) or, while the
  model is silent, by one consistent read of the session per `persist_interval`; the stream is then closed.
- A redelivered turn that already ended writes nothing; a running turn whose lease ran out (its worker died)
  is taken over and ends with the same single reply message.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatkeep import clock, ids
from chatkeep.agents.converse import (
    DEFAULT_HISTORY_WINDOW_TOKENS,
    ModelChoice,
    build_request,
    effective_model,
    history_window,
)
from chatkeep.agents.model import FailureCode, Finished, ModelFailure, ModelStream
from chatkeep.models import Agent, Message, ReplyStatus, Role, TurnStatus, Usage
from chatkeep.observability import logger
from chatkeep.repository.base import IdCollision
from chatkeep.repository.turn_store import StopReason, TurnClaim, TurnStopped, TurnStore
from chatkeep.settings import Settings

PERSIST_INTERVAL_SECONDS = 1.0
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
ID_ATTEMPTS = 5
ENDED_BY = {StopReason.CANCELLED: None, StopReason.CLOSED: "session_closed", StopReason.EXPIRED: "session_expired"}


class Model(Protocol):
    def stream(self, request: dict[str, Any]) -> ModelStream: ...


class AgentReader(Protocol):
    def get_agent(self, ws: str, aid: int) -> Agent | None: ...


class LiveReply(Protocol):
    """The reply's chunks to the session's subscribers (chatkeep.realtime.reply_stream), off the model's thread."""

    def grew(self, reply: Message, text: str, delta: str) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class TurnResult:
    """What a run did (logged, counted as metrics, asserted by tests)."""

    outcome: str  # complete | failed | cancelled | skipped (nothing to do) | abandoned (session gone / taken over)
    error_code: str | None = None
    reply_id: int | None = None
    model: str | None = None
    usage: Usage | None = None
    attempts: int = 0
    backoff: list[float] = field(default_factory=list)
    writes: int = 0  # DynamoDB writes of the reply (open + persists + finish)
    time_to_first_token_ms: float | None = None
    duration_ms: float = 0.0


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt))


class TurnRunner:
    def __init__(self, *, store: TurnStore, agents: AgentReader, model: Model, settings: Settings,
                 sleep: Callable[[float], None] = time.sleep, persist_interval: float = PERSIST_INTERVAL_SECONDS,
                 rng: random.Random | None = None, retention_seconds: int | None = None,
                 live: Callable[[TurnClaim], LiveReply | None] | None = None) -> None:
        self.store = store
        self.live = live  # one LiveReply per turn (None: nobody can be told, e.g. no WebSocket API)
        self.agents = agents
        self.model = model
        self.settings = settings
        self.sleep = sleep
        self.persist_interval = persist_interval
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.retention = retention_seconds if retention_seconds is not None else settings.retention_days * 86400

    # ------------------------------------------------------------ entry point

    def run(self, workspace_id: str, session_id: int, turn_id: int, *, worker: str) -> TurnResult:
        """Raises TurnBusy when another live worker holds the turn (the queue delivers it again later)."""
        started = time.monotonic()
        try:
            claim = self.store.begin(workspace_id, session_id, turn_id, worker=worker, now=clock.now(),
                                     lease_seconds=self.settings.turn_lease_seconds)
        except TurnStopped as stopped:
            logger.info("turn already ended", extra={"session_id": session_id, "turn_id": turn_id,
                                                     "reason": stopped.reason.value})
            return TurnResult(outcome="skipped")
        result = self._run(claim, started)
        result.duration_ms = (time.monotonic() - started) * 1000
        return result

    def _run(self, claim: TurnClaim, started: float) -> TurnResult:
        session = claim.session
        now = clock.now()
        ended = self._ended_at_begin(claim, now)
        if ended is not None:
            return self._stop(claim, ended, text=claim.reply.content if claim.reply else "", choice=None)
        agent = self.agents.get_agent(claim.workspace_id, session.agent_id) if session.agent_id else None
        if agent is None or not agent.managed:
            return self._fail(claim, None, FailureCode.AGENT_UNAVAILABLE,
                              "the session's agent is not a managed (bedrock) agent any more")
        choice = effective_model(agent, session)
        if not self.settings.model_allowed(choice.model_id):
            return self._fail(claim, choice, FailureCode.MODEL_NOT_ALLOWED,
                              f"model {choice.model_id!r} is not in this deployment's AllowedModelIds")
        quota = self.settings.daily_token_quota
        if quota and self.store.tokens_today(claim.workspace_id, clock.iso(now)[:10]) >= quota:
            return self._fail(claim, choice, FailureCode.QUOTA_EXCEEDED,
                              f"the workspace used its {quota} tokens for today")
        turn_sk = self.store.turn_message_sk(claim.workspace_id, claim.session_id, claim.message_id)
        if turn_sk is None:
            return self._fail(claim, choice, FailureCode.MODEL_ERROR, "the turn's message is gone")
        history = history_window(
            self.store.history_newest_first(claim.workspace_id, claim.session_id, before_sk=turn_sk),
            turn_message_id=claim.message_id,
            budget_tokens=agent.history_window_tokens or DEFAULT_HISTORY_WINDOW_TOKENS)
        guardrail = ((self.settings.guardrail_id, self.settings.guardrail_version or "DRAFT")
                     if self.settings.guardrail_id else None)
        request = build_request(agent=agent, session=session, history=history, choice=choice,
                                turn_id=claim.turn_id, guardrail=guardrail)
        return _Streaming(self, claim, choice, request, started).run()

    @staticmethod
    def _ended_at_begin(claim: TurnClaim, now: float) -> StopReason | None:
        session = claim.session
        if claim.cancel_requested:
            return StopReason.CANCELLED
        if session.closed_at:
            return StopReason.CLOSED
        if session.expires_at_epoch <= now:
            return StopReason.EXPIRED
        return None

    # ------------------------------------------------------------ endings

    def _new_reply(self, claim: TurnClaim, content: str, choice: ModelChoice | None) -> Message:
        stamp = clock.iso(clock.now())
        session = claim.session
        return Message(id=ids.new_id(), workspace_id=claim.workspace_id, session_id=claim.session_id,
                       container_id=session.container_id, content=content, role=Role.ASSISTANT, created_at=stamp,
                       status=ReplyStatus.STREAMING, turn_id=claim.turn_id,
                       model=choice.model_id if choice else None)

    def _finish(self, claim: TurnClaim, *, status: TurnStatus, reply: Message | None, usage: Usage | None,
                model: str | None) -> bool:
        """False when the turn is no longer this worker's to end (session deleted, taken over)."""
        for _ in range(ID_ATTEMPTS):
            try:
                self.store.finish(claim, status=status, reply=reply, usage=usage, model=model, now=clock.now())
                return True
            except TurnStopped as stopped:
                logger.info("turn ended elsewhere", extra={"session_id": claim.session_id,
                                                            "reason": stopped.reason.value})
                return False
            except IdCollision:
                assert reply is not None and claim.reply is None
                reply.id = ids.new_id()
        return False

    def _fail(self, claim: TurnClaim, choice: ModelChoice | None, code: str, message: str, *,
              text: str = "", usage: Usage | None = None) -> TurnResult:
        reply = claim.reply or self._new_reply(claim, text, choice)
        reply.content = text or reply.content
        reply.status, reply.error_code, reply.error_message = ReplyStatus.FAILED, code, message[:500]
        reply.usage = usage
        model = choice.model_id if choice else None
        logger.warning("turn failed", extra={"session_id": claim.session_id, "turn_id": claim.turn_id,
                                             "error_code": code, "error": message[:500]})
        if not self._finish(claim, status=TurnStatus.FAILED, reply=reply, usage=usage, model=model):
            return TurnResult(outcome="abandoned", error_code=code)
        return TurnResult(outcome="failed", error_code=code, reply_id=reply.id, model=model, usage=usage)

    def _stop(self, claim: TurnClaim, reason: StopReason, *, text: str, choice: ModelChoice | None,
              usage: Usage | None = None) -> TurnResult:
        """The turn must stop: cancelled (cancel, close, expiry) keeps its partial reply; a deleted session or a
        turn taken over gets no write at all."""
        if reason not in ENDED_BY:
            return TurnResult(outcome="abandoned", error_code=reason.value)
        reply = claim.reply
        if reply is None and text:
            reply = self._new_reply(claim, text, choice)
        if reply is not None:
            reply.content = text or reply.content
            reply.status = ReplyStatus.CANCELLED
            reply.error_code = ENDED_BY[reason]
            reply.usage = usage
        model = choice.model_id if choice else None
        if not self._finish(claim, status=TurnStatus.CANCELLED, reply=reply, usage=usage, model=model):
            return TurnResult(outcome="abandoned", error_code=reason.value)
        return TurnResult(outcome="cancelled", error_code=ENDED_BY[reason], reply_id=reply.id if reply else None,
                          model=model, usage=usage)


class _Streaming:
    """One turn's model call and the reply's writes (a helper object: the state of one run).

    A reader thread calls the model and hands its events over a queue; this thread writes the reply and, while
    the model is silent, checks the session once per interval. So a cancel is seen within about a second even
    when the model stalls (a read blocked on a socket cannot be interrupted portably; the reader is left to end
    with its connection, and its events are ignored)."""

    def __init__(self, runner: TurnRunner, claim: TurnClaim, choice: ModelChoice, request: dict[str, Any],
                 started: float) -> None:
        self.runner, self.claim, self.choice, self.request, self.started = runner, claim, choice, request, started
        self.text = ""
        self.writes = 0
        self.last_write = time.monotonic()  # of the reply's content: paces the persists
        self.first_token_at: float | None = None
        self.stop: StopReason | None = None
        self.live = runner.live(claim) if runner.live else None

    def run(self) -> TurnResult:
        try:
            return self._run()
        finally:
            if self.live is not None:
                self.live.close()

    def _run(self) -> TurnResult:
        runner = self.runner
        backoff: list[float] = []
        attempts = 0
        while True:
            attempts += 1
            try:
                finished = self._stream_once()
            except ModelFailure as failure:
                if failure.retryable and not self.text and attempts < runner.settings.model_max_attempts:
                    delay = backoff_delay(attempts - 1, runner.rng)
                    backoff.append(delay)
                    runner.sleep(delay)
                    continue
                result = runner._fail(self.claim, self.choice, failure.code, failure.message, text=self.text)
                return self._done(result, attempts, backoff)
            except TurnStopped as stopped:
                self.stop = stopped.reason
                return self._done(self._stopped(), attempts, backoff)
            return self._done(self._complete(finished), attempts, backoff)

    def _done(self, result: TurnResult, attempts: int, backoff: list[float]) -> TurnResult:
        result.attempts, result.backoff, result.writes = attempts, backoff, self.writes + 1
        if self.first_token_at is not None:
            result.time_to_first_token_ms = (self.first_token_at - self.started) * 1000
        return result

    def _stream_once(self) -> Finished:
        """One model call: its events until Finished; raises ModelFailure or TurnStopped."""
        events: queue.Queue[Any] = queue.Queue()
        opened: list[ModelStream] = []
        reader = threading.Thread(target=self._read, args=(events, opened), name="turn-model-reader", daemon=True)
        reader.start()
        interval = self.runner.persist_interval
        try:
            while True:
                try:
                    event = events.get(timeout=interval)
                except queue.Empty:  # the model is silent: has the turn been cancelled, closed, deleted?
                    self._check()
                    continue
                if isinstance(event, BaseException):
                    raise event
                if isinstance(event, Finished):
                    return event
                self._grow(event.text)
        finally:
            # Close the stream without waiting: a close blocks until a read blocked on the same buffered socket
            # returns (the model may stay silent for long), and the turn must end now.
            for stream in opened:
                threading.Thread(target=stream.close, name="turn-model-close", daemon=True).start()
            if self.live is not None:  # the last chunk goes before the reply's end is written
                self.live.flush()

    def _read(self, events: queue.Queue[Any], opened: list[ModelStream]) -> None:
        try:
            stream = self.runner.model.stream(self.request)
            opened.append(stream)
            for event in stream:
                events.put(event)
        except BaseException as exc:  # noqa: BLE001 - handed to the turn's thread, which decides
            events.put(exc)

    def _check(self) -> None:
        try:
            reason = self.runner.store.check(self.claim, now=clock.now())
        except Exception:  # a failed read is not a reason to stop: the next check or write will tell
            logger.exception("turn check failed")
            return
        if reason is not None:
            raise TurnStopped(reason)

    def _grow(self, delta: str) -> None:
        runner, claim = self.runner, self.claim
        self.text += delta
        now = time.monotonic()
        if claim.reply is None:
            self.first_token_at = now
            for _ in range(ID_ATTEMPTS):
                reply = runner._new_reply(claim, self.text, self.choice)
                try:
                    runner.store.open_reply(claim, reply, now=clock.now(), retention=runner.retention)
                    break
                except IdCollision:
                    continue
            self.writes += 1
            self.last_write = now
        elif self.first_token_at is None:  # taking over a dead worker's reply: rewrite it from the start
            self.first_token_at = now
            self._persist(now)
        elif now - self.last_write >= runner.persist_interval:
            self._persist(now)
        if self.live is not None and claim.reply is not None:
            self.live.grew(claim.reply, self.text, delta)

    def _persist(self, now: float) -> None:
        self.last_write = now
        self.runner.store.persist(self.claim, self.text, now=clock.now())
        self.writes += 1

    def _stopped(self) -> TurnResult:
        assert self.stop is not None
        return self.runner._stop(self.claim, self.stop, text=self.text, choice=self.choice)

    def _complete(self, finished: Finished) -> TurnResult:
        runner, claim = self.runner, self.claim
        reply = claim.reply or runner._new_reply(claim, self.text, self.choice)
        reply.content = self.text
        reply.status = ReplyStatus.COMPLETE
        reply.stop_reason, reply.usage, reply.latency_ms = finished.stop_reason, finished.usage, finished.latency_ms
        reply.model = self.choice.model_id
        if not runner._finish(claim, status=TurnStatus.COMPLETE, reply=reply, usage=finished.usage,
                              model=self.choice.model_id):
            return TurnResult(outcome="abandoned")
        return TurnResult(outcome="complete", reply_id=reply.id, model=self.choice.model_id, usage=finished.usage)
