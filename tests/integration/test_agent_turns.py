"""Agent turns over moto: the worker's writes, the Converse request, failures, redelivery, takeover, cancel.

The model here is a scripted stream of Bedrock's ConverseStream events (the shapes botocore yields), so each
test controls timing and failures exactly; tests/e2e drive the stand-in model over HTTP with real boto3."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_principal

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def delta(text: str) -> dict[str, Any]:
    return {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": text}}}


def ending(stop: str = "end_turn", tokens_in: int = 12, tokens_out: int = 5) -> list[dict[str, Any]]:
    return [{"contentBlockStop": {"contentBlockIndex": 0}}, {"messageStop": {"stopReason": stop}},
            {"metadata": {"usage": {"inputTokens": tokens_in, "outputTokens": tokens_out,
                                    "totalTokens": tokens_in + tokens_out}, "metrics": {"latencyMs": 42}}}]


def client_error(code: str, message: str = "boom") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "ConverseStream")


class Script:
    """One scripted response: events (dicts), pauses (floats, seconds) and exceptions, in order."""

    def __init__(self, *steps: Any) -> None:
        self.steps = steps
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield {"messageStart": {"role": "assistant"}}
        for step in self.steps:
            if self.closed.is_set():
                raise client_error("ConnectionClosed", "stream closed")  # what a closed socket looks like
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, (int, float)):
                self.closed.wait(step)
                continue
            yield step

    def close(self) -> None:
        self.closed.set()


class ScriptedModel:
    """`converse_stream` answers: a Script (the stream) or an exception raised by the call itself."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def stream(self, request: dict[str, Any]) -> Any:
        from chatkeep.agents.model import ModelStream, _from_exception

        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise _from_exception(answer)
        return ModelStream({"stream": answer})


@pytest.fixture
def turns(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ALLOWED_MODEL_IDS", f"{MODEL},amazon.nova-lite-v1:0")
    from chatkeep import settings

    settings.reset()
    return TurnsWorld()


class TurnsWorld:
    def __init__(self) -> None:
        from chatkeep.repository.dynamodb import DynamoDBChatRepository
        from chatkeep.repository.turn_store import TurnStore
        from chatkeep.service import ChatService
        from chatkeep.settings import get_settings

        self.repo = DynamoDBChatRepository()
        self.service = ChatService(self.repo)
        self.store = TurnStore()
        self.settings = get_settings()
        self.user = make_principal("alice", "ws-turns")
        self.bot = make_principal("ops", "ws-turns", service=True)
        self.slept: list[float] = []

    def agent(self, **kwargs: Any) -> Any:
        fields = {"slug": f"a{time.monotonic_ns()}", "name": "Helper", "provider": "bedrock", "model": MODEL,
                  "system_prompt": "You are terse.", **kwargs}
        return self.service.create_agent(self.bot, **fields)

    def session(self, agent: Any, **kwargs: Any) -> Any:
        return self.service.create_session(self.user, 7, agent_id=agent.id, **kwargs)

    def runner(self, model: Any, *, interval: float = 0.05) -> Any:
        from chatkeep.agents.runner import TurnRunner

        return TurnRunner(store=self.store, agents=self.repo, model=model, settings=self.settings,
                          sleep=self.slept.append, persist_interval=interval)

    def post(self, sid: int, text: str) -> tuple[Any, Any]:
        return self.service.post_message(self.user, sid, content=text)

    def messages(self, sid: int) -> list[Any]:
        return self.service.list_messages(self.user, sid, limit=100, order="asc").messages

    def replies(self, sid: int) -> list[Any]:
        return [m for m in self.messages(sid) if m.status is not None]

    def session_now(self, sid: int) -> Any:
        return self.service.get_session_only(self.user, sid)


# ---------------------------------------------------------------- the happy path and what the model sees

def test_given_a_bedrock_agent_when_a_user_posts_then_the_turn_is_queued_with_the_message(turns: Any) -> None:
    session = turns.session(turns.agent())
    message, after = turns.post(session.id, "hello there")
    assert after.turn is not None and after.turn.status == "queued" and after.turn.message_id == message.id
    stored = turns.session_now(session.id).turn
    assert (stored.id, stored.status, stored.message_id) == (after.turn.id, "queued", message.id)


def test_given_an_external_agent_when_a_user_posts_then_no_turn_starts(turns: Any) -> None:
    agent = turns.service.create_agent(turns.bot, slug="ext", name="External", model="gpt-4")
    session = turns.session(agent)
    _, after = turns.post(session.id, "hello")
    assert after.turn is None and turns.session_now(session.id).turn is None


def test_given_a_queued_turn_when_the_worker_runs_then_one_complete_reply_carries_usage(turns: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hello there")
    model = ScriptedModel(Script(delta("Hi"), delta(", Alice"), *ending(tokens_in=12, tokens_out=5)))
    result = turns.runner(model).run("ws-turns", session.id, after.turn.id, worker="w1")
    assert result.outcome == "complete"
    (reply,) = turns.replies(session.id)
    assert (reply.content, reply.status, reply.stop_reason, reply.model) == ("Hi, Alice", "complete", "end_turn", MODEL)
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.latency_ms) == (12, 5, 42)
    now = turns.session_now(session.id)
    assert now.turn.status == "complete" and now.turn.reply_id == reply.id
    assert (now.usage.input_tokens, now.usage.output_tokens) == (12, 5)
    (row,) = turns.service.workspace_usage(turns.bot, None, None)
    assert (row["model"], row["turns"], row["input_tokens"], row["output_tokens"]) == (MODEL, 1, 12, 5)


def test_given_context_overrides_and_two_user_messages_in_a_row_then_the_request_is_valid_converse(
        turns: Any) -> None:
    session = turns.session(turns.agent(max_output_tokens=300), initial_context="The user is on the Pro plan.")
    turns.service.update_bot_config(turns.user, session.id, bot_id=session.agent_id, model="amazon.nova-lite-v1:0",
                                    temperature=0.2)
    # An external bot reply first (assistant before any user message), then two user messages in a row.
    turns.service.post_message(turns.bot, session.id, content="Welcome!", role="assistant")
    turns.service.update_session(turns.bot, session.id, agent_id=None)  # two user posts without turns
    turns.post(session.id, "first question")
    turns.service.update_session(turns.bot, session.id, agent_id=session.agent_id)
    _, after = turns.post(session.id, "second question")
    model = ScriptedModel(Script(delta("ok"), *ending()))
    turns.runner(model).run("ws-turns", session.id, after.turn.id, worker="w1")
    (request,) = model.requests
    assert request["modelId"] == "amazon.nova-lite-v1:0"
    assert request["inferenceConfig"] == {"maxTokens": 300, "temperature": 0.2}
    assert request["system"] == [{"text": "You are terse."}, {"text": "The user is on the Pro plan."}]
    assert request["messages"] == [{"role": "user", "content": [{"text": "first question\n\nsecond question"}]}]
    assert request["requestMetadata"] == {"workspace_id": "ws-turns", "session_id": str(session.id),
                                          "turn_id": str(after.turn.id)}


def test_given_a_long_history_then_the_oldest_messages_are_dropped_first(turns: Any) -> None:
    session = turns.session(turns.agent(history_window_tokens=256))
    model = ScriptedModel(*[Script(delta(f"answer {i}"), *ending()) for i in range(6)])
    runner = turns.runner(model)
    for i in range(6):
        _, after = turns.post(session.id, f"question {i} " + "x" * 400)
        runner.run("ws-turns", session.id, after.turn.id, worker="w1")
    sent = model.requests[-1]["messages"]
    assert sent[0]["role"] == "user" and sent[-1]["content"][0]["text"].startswith("question 5")
    assert len(sent) < 11 and all(m["role"] != sent[i + 1]["role"] for i, m in enumerate(sent[:-1]))


# ---------------------------------------------------------------- cadence

def test_given_a_reply_streamed_over_time_then_its_content_is_persisted_at_most_once_per_interval(
        turns: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "tell me a story")
    steps: list[Any] = []
    for i in range(40):  # 40 tokens over ~0.4 s
        steps += [delta(f"w{i} "), 0.01]
    model = ScriptedModel(Script(*steps, *ending()))
    result = turns.runner(model, interval=0.1).run("ws-turns", session.id, after.turn.id, worker="w1")
    # begin is not a reply write: open + persists (one per 0.1 s of ~0.4 s) + finish
    assert result.outcome == "complete" and 3 <= result.writes <= 2 + 6
    assert turns.replies(session.id)[0].content.count("w") == 40


# ---------------------------------------------------------------- failures

@pytest.mark.parametrize(("error", "code"), [
    (client_error("ValidationException", "Input is too long for requested model."), "context_too_long"),
    (client_error("AccessDeniedException", "You don't have access to the model"), "model_access_denied"),
    (client_error("ModelErrorException", "The model failed"), "model_error"),
    (client_error("ValidationException", "A conversation must alternate"), "model_error"),
])
def test_given_a_model_error_then_the_turn_fails_with_its_stable_code(turns: Any, error: Exception,
                                                                        code: str) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    result = turns.runner(ScriptedModel(error)).run("ws-turns", session.id, after.turn.id, worker="w1")
    assert (result.outcome, result.error_code) == ("failed", code)
    (reply,) = turns.replies(session.id)
    assert (reply.status, reply.error_code, reply.content) == ("failed", code, "")
    assert turns.session_now(session.id).turn.status == "failed"


def test_given_throttling_then_the_turn_backs_off_and_succeeds(turns: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    model = ScriptedModel(client_error("ThrottlingException"), client_error("ThrottlingException"),
                          Script(delta("done"), *ending()))
    result = turns.runner(model).run("ws-turns", session.id, after.turn.id, worker="w1")
    assert (result.outcome, result.attempts, len(result.backoff)) == ("complete", 3, 2)
    assert turns.slept == result.backoff and all(0 <= d <= 8 for d in result.backoff)


def test_given_throttling_that_never_ends_then_the_turn_fails_model_throttled_after_bounded_retries(
        turns: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    attempts = turns.settings.model_max_attempts
    model = ScriptedModel(*[client_error("ThrottlingException") for _ in range(attempts)])
    result = turns.runner(model).run("ws-turns", session.id, after.turn.id, worker="w1")
    assert (result.outcome, result.error_code, result.attempts) == ("failed", "model_throttled", attempts)


def test_given_a_mid_stream_error_then_the_partial_reply_is_kept_and_failed(turns: Any) -> None:
    from botocore.exceptions import EventStreamError

    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    broken = EventStreamError({"Error": {"Code": "modelStreamErrorException", "Message": "broke"}}, "ConverseStream")
    result = turns.runner(ScriptedModel(Script(delta("partial "), broken))).run(
        "ws-turns", session.id, after.turn.id, worker="w1")
    assert (result.outcome, result.error_code) == ("failed", "model_error")
    (reply,) = turns.replies(session.id)
    assert (reply.content, reply.status) == ("partial ", "failed")


def test_given_a_model_not_in_allowed_ids_then_the_turn_fails_model_not_allowed(turns: Any) -> None:
    session = turns.session(turns.agent())
    turns.service.update_bot_config(turns.user, session.id, bot_id=session.agent_id, model="meta.llama-x",
                                    temperature=None)
    _, after = turns.post(session.id, "hi")
    model = ScriptedModel()
    result = turns.runner(model).run("ws-turns", session.id, after.turn.id, worker="w1")
    assert (result.outcome, result.error_code, model.requests) == ("failed", "model_not_allowed", [])


def test_given_a_daily_quota_used_up_then_turns_fail_fast_with_quota_exceeded(turns: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    turns.runner(ScriptedModel(Script(delta("a"), *ending(tokens_in=60, tokens_out=40)))).run(
        "ws-turns", session.id, after.turn.id, worker="w1")
    turns.settings = turns.settings.model_copy(update={"daily_token_quota": 100})
    _, again = turns.post(session.id, "more")
    model = ScriptedModel()
    result = turns.runner(model).run("ws-turns", session.id, again.turn.id, worker="w1")
    assert (result.error_code, model.requests) == ("quota_exceeded", [])


# ---------------------------------------------------------------- one turn, one reply

def test_given_a_finished_turn_when_it_is_delivered_again_then_nothing_is_written(turns: Any,
                                                                                  ddb_requests: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    runner = turns.runner(ScriptedModel(Script(delta("x"), *ending())))
    assert runner.run("ws-turns", session.id, after.turn.id, worker="w1").outcome == "complete"
    ddb_requests.reset()
    assert runner.run("ws-turns", session.id, after.turn.id, worker="w2").outcome == "skipped"
    assert ddb_requests.log == ["UpdateItem"]  # the refused begin only
    assert len(turns.replies(session.id)) == 1


def test_given_a_running_turn_when_it_is_delivered_again_then_the_second_worker_backs_off(turns: Any) -> None:
    from chatkeep.repository.turn_store import TurnBusy

    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    turns.store.begin("ws-turns", session.id, after.turn.id, worker="w1", now=time.time(), lease_seconds=135)
    with pytest.raises(TurnBusy):
        turns.runner(ScriptedModel()).run("ws-turns", session.id, after.turn.id, worker="w2")


def test_given_a_worker_that_died_mid_reply_when_the_lease_runs_out_then_another_ends_it_with_one_reply(
        turns: Any, clock_offset: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    crash = RuntimeError("the execution environment was shut down")  # not a model error: the worker dies
    with pytest.raises(RuntimeError):
        turns.runner(ScriptedModel(Script(delta("half a "), crash))).run(
            "ws-turns", session.id, after.turn.id, worker="w1")
    (orphan,) = turns.replies(session.id)
    assert orphan.status == "streaming"
    clock_offset.advance(turns.settings.turn_lease_seconds + 1)
    result = turns.runner(ScriptedModel(Script(delta("whole answer"), *ending()))).run(
        "ws-turns", session.id, after.turn.id, worker="w2")
    assert result.outcome == "complete"
    (reply,) = turns.replies(session.id)
    assert (reply.id, reply.content, reply.status) == (orphan.id, "whole answer", "complete")


def test_given_sixteen_concurrent_posts_then_exactly_one_starts_a_turn(turns: Any) -> None:
    from chatkeep.errors import TurnInProgress

    session = turns.session(turns.agent())
    outcomes: list[str] = []

    def post(i: int) -> None:
        try:
            turns.post(session.id, f"message {i}")
            outcomes.append("ok")
        except TurnInProgress:
            outcomes.append("turn_in_progress")

    threads = [threading.Thread(target=post, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1 and outcomes.count("turn_in_progress") == 15


# ---------------------------------------------------------------- control and the session's lifecycle

def run_in_background(turns: Any, sid: int, turn_id: int, script: Script) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(
        turns.runner(ScriptedModel(script), interval=0.2).run("ws-turns", sid, turn_id, worker="w1")))
    thread.start()
    return thread, out


def wait_for_reply(turns: Any, sid: int) -> Any:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        replies = turns.replies(sid)
        if replies:
            return replies[0]
        time.sleep(0.02)
    raise AssertionError("no reply appeared")


def test_given_a_running_turn_when_cancelled_then_the_worker_stops_within_a_second_keeping_the_partial_reply(
        turns: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    script = Script(delta("partial"), 30.0, delta(" never"), *ending())  # then the model stalls
    thread, out = run_in_background(turns, session.id, after.turn.id, script)
    wait_for_reply(turns, session.id)
    asked = time.monotonic()
    turns.service.cancel_turn(turns.user, session.id)
    thread.join(5)
    latency = time.monotonic() - asked
    assert not thread.is_alive() and latency < 1.0
    assert out[0].outcome == "cancelled"
    (reply,) = turns.replies(session.id)
    assert (reply.content, reply.status) == ("partial", "cancelled")
    assert turns.session_now(session.id).turn.status == "cancelled"


def test_given_a_queued_turn_when_cancelled_then_the_worker_finds_nothing_to_do(turns: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    assert turns.service.cancel_turn(turns.user, session.id).turn.status == "cancelled"
    model = ScriptedModel()
    assert turns.runner(model).run("ws-turns", session.id, after.turn.id, worker="w1").outcome == "skipped"
    assert model.requests == [] and turns.replies(session.id) == []


def test_given_a_failed_turn_when_retried_then_a_new_turn_answers_the_same_message(turns: Any) -> None:
    session = turns.session(turns.agent())
    message, after = turns.post(session.id, "hi")
    turns.runner(ScriptedModel(client_error("ModelErrorException"))).run(
        "ws-turns", session.id, after.turn.id, worker="w1")
    retried = turns.service.retry_turn(turns.user, session.id)
    assert retried.turn.status == "queued" and retried.turn.id != after.turn.id
    assert retried.turn.message_id == message.id
    result = turns.runner(ScriptedModel(Script(delta("second try"), *ending()))).run(
        "ws-turns", session.id, retried.turn.id, worker="w1")
    assert result.outcome == "complete"
    assert [r.status for r in turns.replies(session.id)] == ["failed", "complete"]


def test_given_a_running_turn_when_the_session_is_closed_then_the_reply_ends_cancelled(turns: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    thread, out = run_in_background(turns, session.id, after.turn.id, Script(delta("partial"), 30.0))
    wait_for_reply(turns, session.id)
    turns.service.close_session(turns.user, session.id)
    thread.join(5)
    assert (out[0].outcome, out[0].error_code) == ("cancelled", "session_closed")
    assert turns.replies(session.id)[0].status == "cancelled"


def test_given_a_running_turn_when_the_session_is_deleted_then_the_worker_writes_nothing_more(
        turns: Any, dynamodb: Any) -> None:
    session = turns.session(turns.agent())
    _, after = turns.post(session.id, "hi")
    thread, out = run_in_background(turns, session.id, after.turn.id, Script(delta("partial"), 30.0))
    wait_for_reply(turns, session.id)
    turns.service.delete_session(turns.user, session.id)
    thread.join(5)
    assert out[0].outcome == "abandoned"
    from chatkeep.repository import keys

    items = dynamodb.query(TableName=turns.repo.table_name, KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues={":pk": {"S": keys.session_pk("ws-turns", session.id)}})
    assert all(i["type"]["S"] == "message" for i in items["Items"])  # no session resurrected; cascade removes the rest


def test_given_another_user_then_they_cannot_cancel_retry_or_read_usage(turns: Any) -> None:
    from chatkeep.errors import Forbidden, NotFound

    session = turns.session(turns.agent())
    turns.post(session.id, "hi")
    mallory = make_principal("mallory", "ws-turns")
    other_ws = make_principal("alice", "ws-other")
    for who in (mallory, other_ws):
        with pytest.raises(NotFound):
            turns.service.cancel_turn(who, session.id)
        with pytest.raises(NotFound):
            turns.service.retry_turn(who, session.id)
    with pytest.raises(Forbidden):
        turns.service.workspace_usage(turns.user, None, None)
    assert turns.service.workspace_usage(make_principal("ops", "ws-other", service=True), None, None) == []


def test_given_a_running_turn_when_the_session_expires_then_the_reply_ends_cancelled_as_expired(
        turns: Any, clock_offset: Any) -> None:
    session = turns.session(turns.agent(), idle_timeout=60)
    _, after = turns.post(session.id, "hi")
    thread, out = run_in_background(turns, session.id, after.turn.id, Script(delta("partial"), 30.0))
    wait_for_reply(turns, session.id)
    clock_offset.advance(120)  # past the session's 60 s idle timeout: expired
    thread.join(5)
    assert (out[0].outcome, out[0].error_code) == ("cancelled", "session_expired")
    (reply,) = turns.replies(session.id)
    assert (reply.status, reply.content, reply.error_code) == ("cancelled", "partial", "session_expired")
