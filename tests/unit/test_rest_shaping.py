"""The REST shapers build plain dicts (no model per response, for speed); the response models still define
the JSON. Given domain objects at the edges of their ranges, when shaped, then the dict validates against its
model and serialises back to itself (same keys, same values)."""

from __future__ import annotations

import pytest
from chatkeep import ids
from chatkeep.models import Agent, Container, Message, Role, Session
from chatkeep.rest.schemas import AgentOut, ChannelOut, MessageOut, SessionOut
from chatkeep.rest.shaping import agent_json, channel_json, message_json, session_json

STAMP = "2026-03-19T12:00:00.000Z"


def session(**changes: object) -> Session:
    values: dict = dict(id=ids.MAX_ID, workspace_id="ws", container_id=1, owner="alice", created_at=STAMP,
                        updated_at=STAMP, last_activity_at=STAMP, idle_timeout=60, expires_at_epoch=1.7e9 + 0.9996)
    values.update(changes)
    return Session(**values)


@pytest.mark.parametrize("given", [
    session(),
    session(title="t", agent_id=7, metadata={"k": [1, {"x": None}]}, initial_context="ctx", message_count=3,
            last_message_at=STAMP, closed_at=STAMP),
])
def test_given_a_session_when_shaped_then_it_is_exactly_a_session_out(given: Session) -> None:
    shaped = session_json(given, now=1.0)
    assert SessionOut.model_validate(shaped).model_dump(mode="json") == shaped
    assert shaped["expires_at"] == "2023-11-14T22:13:20.999Z"  # milliseconds truncated, as clock.iso does


@pytest.mark.parametrize("role,sender", [(Role.USER, "alice"), (Role.ASSISTANT, None)])
def test_given_a_message_when_shaped_then_it_is_exactly_a_message_out(role: Role, sender: str | None) -> None:
    given = Message(id=1, workspace_id="ws", session_id=2, container_id=3, content="hé", role=role,
                    created_at=STAMP, sender_sub=sender, sender_name=sender, metadata={"a": 1})
    shaped = message_json(given)
    assert MessageOut.model_validate(shaped).model_dump(mode="json") == shaped


@pytest.mark.parametrize("agent_id", [None, 5])
def test_given_a_channel_when_shaped_then_it_is_exactly_a_channel_out(agent_id: int | None) -> None:
    shaped = channel_json(Container(id=9, workspace_id="ws", owner="*", created_at=STAMP, agent_id=agent_id))
    assert ChannelOut.model_validate(shaped).model_dump(mode="json") == shaped
    assert shaped["session_count"] == 0


@pytest.mark.parametrize("temperature,shown", [(None, None), (1, 1.0), (0.25, 0.25)])
def test_given_an_agent_when_shaped_then_it_is_exactly_an_agent_out(temperature: float | None,
                                                                    shown: float | None) -> None:
    agent = Agent(id=4, workspace_id="ws", slug="s", name="n", created_at=STAMP, temperature=temperature,
                  system_prompt="Be terse.")
    shaped = agent_json(agent, show_system_prompt=True)
    assert AgentOut.model_validate(shaped).model_dump(mode="json") == shaped
    assert shaped["temperature"] == shown and type(shaped["temperature"]) is type(shown)
    assert shaped["system_prompt"] == "Be terse."
    assert agent_json(agent, show_system_prompt=False) == {**shaped, "system_prompt": None}
