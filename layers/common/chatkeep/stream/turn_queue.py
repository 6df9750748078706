"""The turn queue's producer side: the stream processor sends one SQS message per queued agent turn
(docs/agents.md, "Delivery"). SendMessageBatch, 10 entries a call, each entry's failure reported back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chatkeep.errors import ServiceUnavailable
from chatkeep.settings import Settings, get_settings

SQS_BATCH = 10


class TurnJob(BaseModel):
    """A TurnQueue message's body: which turn to run (the worker validates it as untrusted input)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    workspace_id: str = Field(min_length=1)
    session_id: int = Field(ge=1, lt=2**31)
    turn_id: int = Field(ge=1, lt=2**31)

    def body(self) -> str:
        return self.model_dump_json()


class TurnQueue:
    def __init__(self, settings: Settings | None = None, client: Any = None) -> None:
        self.settings = settings or get_settings()
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from chatkeep import aws

            self._client = aws.client("sqs")
        return self._client

    def send(self, jobs: list[TurnJob]) -> list[tuple[TurnJob, Exception]]:
        """Send every job; returns the ones that failed, each with why (the caller fails their sessions)."""
        url = self.settings.turn_queue_url
        if not url:
            error = ServiceUnavailable("TURN_QUEUE_URL is not set: agent turns cannot be delivered")
            return [(job, error) for job in jobs]
        failed: list[tuple[TurnJob, Exception]] = []
        for start in range(0, len(jobs), SQS_BATCH):
            chunk = jobs[start:start + SQS_BATCH]
            entries = [{"Id": str(i), "MessageBody": job.body()} for i, job in enumerate(chunk)]
            try:
                resp = self.client.send_message_batch(QueueUrl=url, Entries=entries)
            except Exception as exc:  # noqa: BLE001 - the whole call failed: every job of it is reported
                failed += [(job, exc) for job in chunk]
                continue
            for entry in resp.get("Failed", []):
                failed.append((chunk[int(entry["Id"])],
                               ServiceUnavailable(f"SQS refused a turn: {entry.get('Code')}: {entry.get('Message')}")))
        return failed
