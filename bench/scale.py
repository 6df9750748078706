"""Section 4: scale. list, get and search for one user's todo while the workspace holds 10, 1,000 and 10,000
sessions (the others belong to other users, in other containers), seeded with BatchWriteItem (25 per
request) straight into moto. For each operation: latency against moto, DynamoDB requests, and the items
DynamoDB read (ScannedCount, Count; moto's ConsumedCapacity is not meaningful), from an after-call hook."""

from __future__ import annotations

import time
from typing import Any

from bench.common import median, moto_tables, print_table
from bench.ops import GET_SESSION, GET_SESSIONS, MESSAGE_TEXT, SEARCH, World

SIZES = (10, 1_000, 10_000)
MINE = 10  # the caller's own sessions (always the same): what the operations return


class ReadCounter:
    def __init__(self) -> None:
        self.requests = self.scanned = self.returned = 0

    def __call__(self, model: Any = None, parsed: Any = None, **_: Any) -> None:
        self.requests += 1
        parsed = parsed or {}
        if "ScannedCount" in parsed:
            self.scanned += parsed["ScannedCount"]
            self.returned += parsed.get("Count", 0)
        for items in (parsed.get("Responses") or {}).values():
            self.scanned += len(items)
            self.returned += len(items)
        if parsed.get("Item"):
            self.scanned += 1
            self.returned += 1


def seed_others(client: Any, total: int, mine: int) -> None:
    """Other users' sessions in other containers of the same workspace, 25 per BatchWriteItem."""
    import random

    from chatkeep import clock
    from chatkeep.models import Session
    from chatkeep.repository.items import session_to_item
    from chatkeep.settings import get_settings

    table = get_settings().chat_table_name
    rng = random.Random(total)
    now = clock.now()
    stamp = clock.iso(now)
    items = []
    for i in range(total - mine):
        sid = rng.randrange(1, 2**31 - 1)
        s = Session(id=sid, workspace_id="ws1", container_id=100_000 + i % 500, owner=f"user{i % 500}",
                    created_at=stamp, updated_at=stamp, last_activity_at=stamp, idle_timeout=86400,
                    expires_at_epoch=int(now) + 86400, title=f"billing question {i}", purge_at=int(now) + 86400 * 31)
        items.append({"PutRequest": {"Item": session_to_item(s)}})
    for i in range(0, len(items), 25):
        client.batch_write_item(RequestItems={table: items[i:i + 25]})


def run(sizes: tuple[int, ...] = SIZES, repeat: int = 15) -> dict[str, Any]:
    rows, results = [], {}
    for size in sizes:
        with moto_tables() as raw:
            world = World()
            todo = world.todo()
            sids = []
            for i in range(MINE):
                sids.append(world.session(todo, f"billing question {i}"))
            world.message(sids[0], MESSAGE_TEXT)
            world.settle_stream()  # index my sessions (the others are not in the index: they do not match)
            started = time.perf_counter()
            seed_others(raw, size, MINE)
            seeded_s = time.perf_counter() - started
            ops = {
                "getTodoChatSessions (limit 20)": (GET_SESSIONS, {"todoId": todo, "limit": 20, "offset": 0}),
                "getOneTodoChatSession": (GET_SESSION, {"sessionId": sids[0]}),
                "getSearchTodoChatSessions ('billing')": (SEARCH, {"todoId": todo, "searchQuery": "billing"}),
            }
            for name, (doc, variables) in ops.items():
                world.gql(doc, variables).check()  # warm
                counter = ReadCounter()
                world.client.meta.events.register("after-call.dynamodb.*", counter)
                times = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    world.gql(doc, variables).check()
                    times.append((time.perf_counter() - t) * 1000)
                world.client.meta.events.unregister("after-call.dynamodb.*", counter)
                entry = {"sessions_in_workspace": size, "ms": median(times), "requests": counter.requests / repeat,
                         "items_read": counter.scanned / repeat, "items_returned": counter.returned / repeat,
                         "seed_s": seeded_s}
                results[f"{name} @ {size}"] = entry
                rows.append([name, size, entry["ms"], entry["requests"], entry["items_read"],
                             entry["items_returned"]])
    note = (f"The caller owns {MINE} sessions in one todo; every other session belongs to other users (500 other "
            "todos). Latency is against in-process moto (its own CPU included): context only. Items read = "
            "ScannedCount of Queries + items of BatchGetItem/GetItem, per request of the operation.")
    results["table"] = print_table("Scale: one user's todo in a growing workspace",
                                   ["operation", "sessions in workspace", "ms (moto)", "DynamoDB requests",
                                    "items read", "items returned"], sorted(rows, key=lambda r: (r[0], r[1])), note)
    return results


if __name__ == "__main__":
    import bench.common  # noqa: F401

    run((10, 1000), 3)
