"""The peers section's tables (bench/peers.py), with the notes that say how each store was driven and where a
peer does better than chatkeep, both computed from the run's figures."""

from __future__ import annotations

from typing import Any

from bench.common import fmt, print_table

# (label, operation, field): the figures compared with chatkeep's, lower is better.
COMPARED = (
    ("requests per append", "append", "requests"), ("bytes sent per append", "append", "sent"),
    ("bytes received per append", "append", "received"), ("CPU per append", "append", "cpu_ms"),
    ("requests per history read", "history", "requests"), ("bytes received per history read", "history", "received"),
    ("CPU per history read", "history", "cpu_ms"), ("requests per newest-20 read", "newest", "requests"),
    ("bytes received per newest-20 read", "newest", "received"), ("CPU per newest-20 read", "newest", "cpu_ms"),
)
CPU_MARGIN = 0.9  # CPU is noisy on a shared machine: "better" means under 0.9x chatkeep's


def _ratio(value: float, floor: float | None) -> float | None:
    return round(value / floor, 1) if floor else None


def _size_rows(out: dict[str, Any]) -> list[list[Any]]:
    stores, floor = out["stores"], out["stores"].get(out["floor"], {}).get("sizes", {})
    rows = []
    for name, result in stores.items():
        for size in out["sizes"]:
            at = result["sizes"].get(size) or result["sizes"].get(str(size))
            if at is None:
                limit = result["headroom"].get("refused_append")
                rows.append([name, size, f"refused (append #{limit:,})" if limit else "refused", *["-"] * 11])
                continue
            base = floor.get(size) or floor.get(str(size)) or {}
            append, history, newest = at["append"], at["history"], at["newest"]
            rows.append([name, size, append["requests"], append["sent"], append["received"],
                         _ratio(append["sent"], base.get("append", {}).get("sent")), append["cpu_ms"],
                         _ratio(append["cpu_ms"], base.get("append", {}).get("cpu_ms")),
                         history["requests"], history["received"], history["cpu_ms"],
                         newest["requests"], newest["received"], at["largest_item"]])
    return rows


def _headroom(result: dict[str, Any]) -> str:
    room = result["headroom"]
    if room["kind"] == "measured":
        return (f"{room['messages']:,} (append #{room['refused_append']:,} refused; item {room['largest_item']:,} B "
                f"before it, +{room['bytes_per_message']:,} B a message)")
    if room["kind"] == "projected":
        return f"~{room['messages']:,} (projected: +{room['bytes_per_message']:,} B a message; not searched)"
    if "largest_item" in room:
        return f"no limit per conversation (largest item {room['largest_item']:,} B at every size)"
    return f"none reached by {room.get('searched_to', 0):,} messages"


def _race_rows(out: dict[str, Any]) -> list[list[Any]]:
    return [[name, _headroom(r), r["race"]["acknowledged"], r["race"]["refused"], r["race"]["in_history"],
             r["race"]["lost"]] for name, r in out["stores"].items()]


def better_than_chatkeep(out: dict[str, Any]) -> list[str]:
    """Every figure where a peer (or the floor) beats chatkeep at a size both measured."""
    mine = out["stores"].get("chatkeep", {}).get("sizes", {})
    lines = []
    for name, result in out["stores"].items():
        if name == "chatkeep":
            continue
        wins = []
        for label, operation, field in COMPARED:
            where = []
            for size, at in result["sizes"].items():
                ours = mine.get(size)
                if ours is None:
                    continue
                theirs, own = at[operation][field], ours[operation][field]
                if theirs < (own * CPU_MARGIN if field == "cpu_ms" else own):
                    where.append(f"{int(size):,} ({fmt(theirs, 2)} vs {fmt(own, 2)})")
            if where:
                wins.append(f"{label} at {', '.join(where)}")
        lines.append(f"- {name} does better than chatkeep on: " + ("; ".join(wins) + "." if wins else "nothing here."))
    return lines


def tables(out: dict[str, Any]) -> str:
    sizes = print_table(
        f"Peers: one conversation, {out['message_chars']}-character messages (bytes = request/response bodies)",
        ["store", "messages", "append req", "append sent B", "append recv B", "sent x floor", "append CPU ms",
         "CPU x floor", "history req", "history recv B", "history CPU ms", "newest 20 req", "newest 20 recv B",
         "largest item B"],
        _size_rows(out),
        "At each size N, one conversation of N messages: 'append' is the Nth append, 'history' reads all N, "
        "'newest 20' the last 20. CPU: the caller's process CPU (time.process_time) minus moto's answering; "
        f"medians of the last {out['window']} appends (at N = 1: the first append of {out['window']} "
        f"conversations) and of {out['reads']} reads. "
        "chatkeep's CPU is its whole Lambda handler (auth, validation, routing, the JSON response) where the "
        "peers are library calls. x floor: over the plain table's figure at the same size.")
    notes = [f"- {name}: {r['how']}" + (f" ({', '.join(f'{d} {v}' for d, v in r['versions'].items())})"
                                         if r["versions"] else "") for name, r in out["stores"].items()]
    notes += [f"- skipped {name}: {why}" for name, why in out["skipped"].items()]
    failures = [f"- {name} refused append #{r['headroom']['refused_append']:,}: {r['headroom']['error'][:300]}"
                for name, r in out["stores"].items() if r["headroom"]["kind"] == "measured"]
    race = out["stores"] and next(iter(out["stores"].values()))["race"]
    limits = print_table(
        f"Peers: item-size headroom and {race['writers']} writers x {race['appends_each']} concurrent appends "
        "into one conversation",
        ["store", "headroom (messages until an item limit)", "acknowledged", "refused", "in the history", "lost"],
        _race_rows(out),
        "\n".join(["How each store was driven:", *notes, *failures, "", "Where a peer does better (this run):",
                   *better_than_chatkeep(out), "",
                   "lost: appends that returned without an error but are not in the history read afterwards. "
                   "Each writer is its own client (a Lambda instance, an app process); chatkeep's concurrent "
                   "writers post through the GraphQL function (createTodoChatMessage), its history is read "
                   "through the REST function."]))
    return sizes + "\n" + limits
