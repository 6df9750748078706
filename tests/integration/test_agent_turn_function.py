"""AgentTurnFunction as template.yaml declares it (loaded by file path, as Lambda loads it), fed SQS events, calling
the local stand-in model through the real boto3 `bedrock-runtime` client: botocore's serialisation, event-stream
parsing and error mapping run as against Bedrock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chatkeep_local.bedrock_standin import StandInConfig, StandInModel
from chatkeep_local.harness import LambdaContext, declared_handler

from tests.conftest import make_principal

MODEL = "amazon.nova-lite-v1:0"
EVENT = Path(__file__).resolve().parents[2] / "events" / "sqs_agent_turn.json"


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInModel]:
    model = StandInModel(StandInConfig(chunk_delay_s=0.0))
    server = model.serve()
    monkeypatch.setenv("BEDROCK_ENDPOINT_URL", server.endpoint_url)
    yield model
    server.close()


@pytest.fixture
def world(dynamodb: Any, standin: StandInModel, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ALLOWED_MODEL_IDS", MODEL)
    from chatkeep_local.harness import reset_caches

    reset_caches()
    from chatkeep.repository.dynamodb import DynamoDBChatRepository
    from chatkeep.service import ChatService

    service = ChatService(DynamoDBChatRepository())
    user, bot = make_principal("alice", "acme"), make_principal("ops", "acme", service=True)
    agent = service.create_agent(bot, slug="helper", name="Helper", provider="bedrock", model=MODEL,
                                 system_prompt="Be brief.")
    session = service.create_session(user, 12345, agent_id=agent.id, initial_context="Plan: Pro")
    yield service, user, session
    reset_caches()


def sqs_event(job: dict[str, Any], message_id: str = "m-1") -> dict[str, Any]:
    event = json.loads(EVENT.read_text())
    record = event["Records"][0]
    record["messageId"], record["body"] = message_id, json.dumps(job)
    return event


def test_the_sample_event_names_a_turn_as_the_stream_processor_writes_it() -> None:
    from chatkeep.stream.turn_queue import TurnJob

    body = json.loads(EVENT.read_text())["Records"][0]["body"]
    assert TurnJob.model_validate_json(body).turn_id > 0


def test_given_a_queued_turn_when_its_message_arrives_then_the_stand_in_answers_through_boto3(
        world: Any, standin: StandInModel) -> None:
    service, user, session = world
    _, after = service.post_message(user, session.id, content="what is my plan?")
    handler = declared_handler("AgentTurnFunction")
    job = {"workspace_id": "acme", "session_id": session.id, "turn_id": after.turn.id}
    assert handler(sqs_event(job), LambdaContext()) == {"batchItemFailures": []}
    (request,) = standin.requests()
    assert request["model_id"] == MODEL
    assert request["body"]["system"] == [{"text": "Be brief."}, {"text": "Plan: Pro"}]
    assert request["body"]["messages"] == [{"role": "user", "content": [{"text": "what is my plan?"}]}]
    reply = [m for m in service.list_messages(user, session.id, order="asc").messages if m.status][0]
    assert reply.status == "complete" and reply.content.startswith("Stand-in reply to 1 message ")
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0 and reply.stop_reason == "end_turn"


@pytest.mark.parametrize(("fault", "code"), [
    ({"kind": "throttle", "count": None}, "model_throttled"),
    ({"kind": "access_denied"}, "model_access_denied"),
    ({"kind": "error", "error": "ModelErrorException"}, "model_error"),
    ({"kind": "break", "after_deltas": 1}, "model_error"),
    ({"kind": "drop", "after_deltas": 1}, "model_error"),
])
def test_given_a_model_fault_then_the_turn_ends_failed_with_its_code_and_the_queue_is_done_with_it(
        world: Any, standin: StandInModel, fault: dict[str, Any], code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(time, "sleep", lambda s: None)  # the worker's throttling backoff is recorded, not slept
    service, user, session = world
    _, after = service.post_message(user, session.id, content="hi")
    standin.add_fault(fault)
    job = {"workspace_id": "acme", "session_id": session.id, "turn_id": after.turn.id}
    assert declared_handler("AgentTurnFunction")(sqs_event(job), LambdaContext()) == {"batchItemFailures": []}
    reply = [m for m in service.list_messages(user, session.id, order="asc").messages if m.status][0]
    assert (reply.status, reply.error_code) == ("failed", code)


def test_given_a_malformed_message_then_only_it_is_reported_for_redelivery(world: Any) -> None:
    event = sqs_event({"workspace_id": "acme", "session_id": "not a number", "turn_id": 1}, message_id="bad")
    result = declared_handler("AgentTurnFunction")(event, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
