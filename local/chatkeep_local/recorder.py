"""`chatkeep dev --record-events DIR`: every event the runtime builds, as JSON, with the bearer token replaced."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any


class EventRecorder:
    """--record-events DIR: every event built, as JSON, with the bearer token replaced."""

    PLACEHOLDER = "Bearer <token>"

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._n = 0
        self._lock = threading.Lock()

    def _next(self) -> int:
        with self._lock:
            self._n += 1
            return self._n

    def api(self, event: dict[str, Any], function: str) -> None:
        event = json.loads(json.dumps(event))
        headers = event.get("headers") or {}
        for name in list(headers):
            if name in ("authorization",):
                headers[name] = self.PLACEHOLDER
        slug = re.sub(r"[^A-Za-z0-9]+", "_", event.get("routeKey", "route")).strip("_")
        path = self.dir / f"{self._next():05d}-api-{function}-{slug}.json"
        path.write_text(json.dumps(event, indent=2, sort_keys=False) + "\n", encoding="utf-8")

    def stream(self, event: dict[str, Any], function: str) -> None:
        kinds = "_".join(sorted({r.get("eventName", "") for r in event.get("Records", [])}))
        path = self.dir / f"{self._next():05d}-stream-{function}-{kinds}.json"
        path.write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")

    def sqs(self, event: dict[str, Any], function: str) -> None:
        path = self.dir / f"{self._next():05d}-sqs-{function}-{len(event.get('Records', []))}.json"
        path.write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")


__all__ = ["EventRecorder"]
