"""The worst single request the API accepts, and what it costs the other tenants (`chatkeep dev`).

    python -m bench --only hostile          (or python -m bench.hostile)

One `chatkeep dev` (the local runtime, the stream polled as Lambda polls it), two workspaces:

- the **victim** posts a message and waits until its `messageCount` shows it and a search finds it: once on a
  quiet system (the baseline), once right after the hostile request;
- the **hostile** tenant sends one GraphQL request: as many aliased `createTodoChatMessage` fields as one request
  may carry (`chatkeep.limits.MAX_MUTATION_FIELDS`; 20 where no bound exists, the figure of issue 18), each posting
  the same 32 KB variable of distinct words (as many as fit: every word is an index entry) to its own session.

Reported: the request's size and time, its stream work (records the stream function received, search-index
items written) and the victim's delays. The stream is one ordered shard locally, as a small table's is in AWS:
whatever the hostile request puts on it is processed before the victim's message."""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _sub in ("layers/common", "local"):
    if str(ROOT / _sub) not in sys.path:
        sys.path.insert(0, str(ROOT / _sub))

UNBOUNDED_FIELDS = 20  # issue 18's request, where the API sets no bound on mutation fields
CONTENT_BYTES = 32 * 1024
POLL_S = 0.05
WAIT_S = 600.0
HOSTILE_TODO, VICTIM_TODO = 4242, 17


def distinct_words(max_bytes: int = CONTENT_BYTES) -> str:
    """Space-separated distinct words of 9 letters (`qa` + 7 base-26 digits) filling `max_bytes`: the most index
    entries one message can ask for (shorter words run out of distinct prefixes that search keeps apart)."""
    words, size, i = [], 0, 0
    while True:
        n, letters = i, []
        for _ in range(7):
            n, digit = divmod(n, 26)
            letters.append(chr(97 + digit))
        word = "qa" + "".join(letters)
        if size + len(word) + 1 > max_bytes:
            return " ".join(words)
        words.append(word)
        size += len(word) + 1
        i += 1


def mutation_fields() -> int:
    from chatkeep import limits

    return int(getattr(limits, "MAX_MUTATION_FIELDS", UNBOUNDED_FIELDS))


def hostile_document(sessions: list[int]) -> str:
    fields = " ".join(f"m{i}: createTodoChatMessage(data: {{sessionId: {sid}, message: $m}}) {{ id }}"
                      for i, sid in enumerate(sessions))
    return f"mutation Flood($m: String!) {{ {fields} }}"


class Tenant:
    def __init__(self, api: Any, workspace: str) -> None:
        self.api = api
        self.workspace = workspace
        self.token = api.token("tenant", workspace, name="Tenant")

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.api.gql(query, variables, token=self.token, timeout=120)

    def new_session(self, todo: int) -> int:
        body = self.gql("mutation($t: Float!){createTodoChatSession(data:{todoId: $t}){id}}", {"t": todo})
        return int(body["data"]["createTodoChatSession"]["id"])


def victim_delays(victim: Tenant, session: int, expected_count: int) -> dict[str, float]:
    """Post one message with a word nobody else uses; -> seconds until its count shows and until search finds
    it, measured from the post's answer."""
    word = f"zebra{uuid.uuid4().hex[:10]}"
    body = victim.gql("mutation($s: Float!, $m: String!){createTodoChatMessage(data:{sessionId: $s, message: $m})"
                      "{id}}", {"s": session, "m": f"ping {word}"})
    assert "errors" not in body, body
    posted = time.perf_counter()
    count_at = search_at = None
    errors: list[str] = []
    deadline = posted + WAIT_S
    while (count_at is None or search_at is None) and time.perf_counter() < deadline:
        if count_at is None:
            got = victim.gql("query($s: Float!){getOneTodoChatSession(sessionId: $s){messageCount}}", {"s": session})
            if ((got.get("data") or {}).get("getOneTodoChatSession") or {}).get("messageCount", 0) >= expected_count:
                count_at = time.perf_counter()
        if search_at is None:
            got = victim.gql("query($t: Float!, $q: String){getSearchTodoChatSessions(todoId: $t, searchQuery: $q)"
                             "{id}}", {"t": VICTIM_TODO, "q": word})
            if got.get("errors"):
                errors.append(got["errors"][0].get("message", "?"))
            if (got.get("data") or {}).get("getSearchTodoChatSessions"):
                search_at = time.perf_counter()
        time.sleep(POLL_S)
    return {"count_s": round((count_at or deadline) - posted, 2),
            "search_s": round((search_at or deadline) - posted, 2),
            "timed_out": count_at is None or search_at is None, "errors": errors[:3]}


def index_items(api: Any, workspace: str, todo: int) -> int:
    """Search-index items of one todo: a Scan of the local moto's index table for the todo's keys (its entries are
    spread over many keys, keys.search_pk; bench code, not product)."""
    import boto3
    from chatkeep.repository import keys

    client = boto3.client("dynamodb", endpoint_url=api.health()["dynamodb"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    table = next(t for t in client.list_tables()["TableNames"] if "search" in t.lower())
    prefix = keys.container_pk(workspace, todo) + "#I#"
    total, start = 0, None
    while True:
        kwargs: dict[str, Any] = {"TableName": table, "FilterExpression": "begins_with(pk, :p)", "Select": "COUNT",
                                  "ExpressionAttributeValues": {":p": {"S": prefix}}}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = client.scan(**kwargs)
        total += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def stream_records(api: Any) -> int:
    return int(api.health()["stream"]["records"])


def run() -> dict[str, Any]:
    from chatkeep_local.testing import LocalApiProcess

    from bench.common import print_table

    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-hostile-") as tmp:
        api = LocalApiProcess(ROOT / "template.yaml", cwd=ROOT, log_path=Path(tmp) / "chatkeep-dev.log")
        api.start()
        try:
            return _measure(api, print_table)
        finally:
            api.stop()


def _measure(api: Any, print_table: Any) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    victim = Tenant(api, f"victim-{run_id}")
    hostile = Tenant(api, f"hostile-{run_id}")
    victim_session = victim.new_session(VICTIM_TODO)
    fields = mutation_fields()
    sessions = [hostile.new_session(HOSTILE_TODO) for _ in range(fields)]
    api.drain(timeout=120)

    records_before = stream_records(api)
    quiet = victim_delays(victim, victim_session, 1)
    api.drain(timeout=120)
    victim_records = stream_records(api) - records_before  # what one victim post puts on the stream

    content = distinct_words()
    document = hostile_document(sessions)
    payload_bytes = len(document.encode()) + len(content.encode())
    records_before = stream_records(api)
    started = time.perf_counter()
    answer = hostile.gql(document, {"m": content})
    request_s = time.perf_counter() - started
    accepted = "errors" not in answer
    loaded = victim_delays(victim, victim_session, 2)
    api.drain(timeout=WAIT_S)
    records = stream_records(api) - records_before - victim_records
    entries = index_items(api, hostile.workspace, HOSTILE_TODO)

    words = len(content.split())
    out = {
        "mutation_fields": fields, "accepted": accepted, "request_kb": round(payload_bytes / 1024, 1),
        "words_per_message": words, "request_s": round(request_s, 2), "stream_records": records,
        "index_items": entries, "quiet": quiet, "after_request": loaded,
        "refusal": None if accepted else (answer.get("errors") or [{}])[0].get("message"),
    }
    rows = [
        ["quiet system (baseline)", "-", "-", "-", quiet["count_s"], quiet["search_s"]],
        [f"after {fields} aliased createTodoChatMessage x 32 KB ({words:,} distinct words)"
         + ("" if accepted else " REFUSED"),
         out["request_s"], records, entries, loaded["count_s"], loaded["search_s"]],
    ]
    out["table"] = print_table(
        "Hostile tenant: the worst single request, its stream work and another workspace's delay (chatkeep dev)",
        ["victim's message posted", "request s", "stream records", "index items written", "victim count s",
         "victim search s"], rows,
        f"One GraphQL request of {out['request_kb']} KB: `MAX_MUTATION_FIELDS` ({fields}) aliased "
        "`createTodoChatMessage` fields sharing one 32 KB variable. stream records: what the stream function "
        "received for it (messages, id claims, activity and count updates); index items: the search entries it "
        "caused. victim count / search: seconds from the answer to the other workspace's post until its "
        f"`messageCount` shows it / a search finds it (polled every {POLL_S} s). Goal: under 5 s.")
    return out


if __name__ == "__main__":
    run()
