"""The Converse request of a turn: what the model is sent (docs/agents.md, "What the model sees").

Pure functions over domain models, so the rules are tested without DynamoDB or Bedrock:
- system: the agent's system prompt, then the session's `initial_context`;
- history: the newest messages that fit the agent's token window (oldest dropped first), always ending
  with the turn's user message; replies that failed or were cancelled are not shown to the model;
- roles as Converse requires them: the first message is a user message, roles alternate (consecutive
  messages of one role are merged into one, their texts separated by a blank line);
- the session's effective model and temperature (its bot config overrides the agent's), the agent's
  output cap, and `requestMetadata` naming the workspace, session and turn (Bedrock's invocation logs).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chatkeep.models import Agent, Message, ReplyStatus, Role, Session

DEFAULT_MAX_OUTPUT_TOKENS = 1024
DEFAULT_HISTORY_WINDOW_TOKENS = 8000
CHARS_PER_TOKEN = 4  # the usual estimate for English text; the window is a budget, not a tokenizer
MERGE_SEPARATOR = "\n\n"
# Bedrock's RequestMetadata values: [a-zA-Z0-9\s:_@$#=/+,-.]{0,256}
_METADATA_UNSAFE = re.compile(r"[^a-zA-Z0-9\s:_@$#=/+,\-.]")


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


@dataclass(frozen=True, slots=True)
class ModelChoice:
    model_id: str
    temperature: float | None
    max_output_tokens: int


def effective_model(agent: Agent, session: Session) -> ModelChoice:
    """The session's bot config overrides the agent's model and temperature (None: the agent's)."""
    config = session.bot_config
    model = (config.model if config and config.model else None) or agent.model or ""
    temperature = config.temperature if config and config.temperature is not None else agent.temperature
    return ModelChoice(model_id=model, temperature=temperature,
                       max_output_tokens=agent.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS)


def shown_to_model(message: Message) -> bool:
    """User messages, external bot replies, and managed replies that completed (a failed or cancelled reply,
    or one still streaming, is not part of the conversation the model continues)."""
    if not message.content.strip():
        return False
    return message.status is None or message.status is ReplyStatus.COMPLETE


def history_window(newest_first: Iterable[Message], *, turn_message_id: int, budget_tokens: int) -> list[Message]:
    """The messages the model sees, oldest first: from the turn's user message back in time while they fit
    `budget_tokens`. The turn's own message is always kept (the model then says whether it fits its context).
    Messages newer than the turn's message (for example an external bot's reply posted meanwhile) are left out."""
    kept: list[Message] = []
    used = 0
    seen_turn_message = False
    for message in newest_first:
        if not seen_turn_message:
            if message.id != turn_message_id:
                continue
            seen_turn_message = True
            kept.append(message)
            used += estimate_tokens(message.content)
            continue
        if not shown_to_model(message):
            continue
        cost = estimate_tokens(message.content)
        if used + cost > budget_tokens:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    return kept


def converse_messages(history: list[Message]) -> list[dict[str, Any]]:
    """Converse's `messages`: starts with a user message, roles alternate (same-role runs merged)."""
    out: list[dict[str, Any]] = []
    texts: list[str] = []
    role: Role | None = None
    for message in history:
        if role is None and message.role is not Role.USER:
            continue  # Converse: "A conversation must start with a user message"
        if message.role is role:
            texts.append(message.content)
            continue
        if role is not None:
            out.append(_message(role, texts))
        role, texts = message.role, [message.content]
    if role is not None:
        out.append(_message(role, texts))
    return out


def _message(role: Role, texts: list[str]) -> dict[str, Any]:
    return {"role": role.value, "content": [{"text": MERGE_SEPARATOR.join(texts)}]}


def system_blocks(agent: Agent, session: Session) -> list[dict[str, str]]:
    return [{"text": text} for text in (agent.system_prompt, session.initial_context) if text and text.strip()]


def metadata_value(value: object) -> str:
    return _METADATA_UNSAFE.sub("_", str(value))[:256]


def build_request(*, agent: Agent, session: Session, history: list[Message], choice: ModelChoice, turn_id: int,
                  guardrail: tuple[str, str] | None = None) -> dict[str, Any]:
    """The keyword arguments of `bedrock-runtime.converse_stream` for this turn."""
    inference: dict[str, Any] = {"maxTokens": choice.max_output_tokens}
    if choice.temperature is not None:
        inference["temperature"] = choice.temperature
    request: dict[str, Any] = {
        "modelId": choice.model_id,
        "messages": converse_messages(history),
        "inferenceConfig": inference,
        "requestMetadata": {
            "workspace_id": metadata_value(session.workspace_id),
            "session_id": str(session.id),
            "turn_id": str(turn_id),
        },
    }
    system = system_blocks(agent, session)
    if system:
        request["system"] = system
    if guardrail:
        identifier, version = guardrail
        request["guardrailConfig"] = {"guardrailIdentifier": identifier, "guardrailVersion": version,
                                      "streamProcessingMode": "async"}
    return request
