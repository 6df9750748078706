"""Section 6: cost model. DynamoDB on-demand and Lambda cost per 1 million messages posted
(createTodoChatMessage) and per 1 million session reads (getOneTodoChatSession), from the request counts of
section 2, item sizes measured on items the code writes to moto, and the warm handler time of section 3.

Prices assumed (PRICES: us-east-1 list prices, the DynamoDB on-demand ones as cut by half on 2024-11-01; issue 6
names no prices; check https://aws.amazon.com/dynamodb/pricing/on-demand/ and https://aws.amazon.com/lambda/pricing/
before relying on them): DynamoDB on-demand $0.625 per million write request units (WRU), $0.125 per million
read request units (RRU), Standard table class; Lambda arm64 $0.0000133334 per GB-second, $0.20 per million
requests. Rules: a write costs 1 WRU per started KB of the item (the larger of old and new image for an
update), doubled inside a transaction; each GSI/LSI an item appears in costs its own write (a GSI key change:
delete + put = 2); strongly consistent reads cost 1 RRU per started 4 KB (eventually consistent 0.5), a
Query is charged on the sum of the item sizes it reads, GetItem and BatchGetItem per item; stream reads by
Lambda are free. Lambda at 512 MB gets 512/1769 of a vCPU: the CPU time measured here (a full core) is scaled
by 1769/512."""

from __future__ import annotations

import math
from typing import Any

from bench.common import moto_tables, print_table
from bench.ops import MESSAGE_TEXT, World

PRICES = {"since": "2024-11-01", "region": "us-east-1", "wru_per_million": 0.625, "rru_per_million": 0.125,
          "lambda_gb_s": 0.0000133334, "lambda_per_million_requests": 0.20, "memory_gb": 0.5}
VCPU_SCALE = 1769 / 512  # Lambda CPU share at 512 MB vs the full core measured here
DDB_RTT_MS = {"read": 4.0, "write": 6.0, "transaction": 12.0}  # assumed in-region round trips (not measured)
MESSAGES_PER_SESSION = 20  # a session read returns the session and its (up to 200) newest messages: assume 20


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names + values (strings UTF-8, numbers ~ digits/2 + 1, maps/lists + 3)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(av: dict[str, Any]) -> int:
    (kind, value), = av.items()
    if kind == "S":
        return len(value.encode())
    if kind == "N":
        return math.ceil(len(value.lstrip("-").replace(".", "")) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in value.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in value)
    if kind == "B":
        return len(value)
    return len(str(value))


def kb(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def measure_items() -> dict[str, Any]:
    from chatkeep import text
    from chatkeep.repository import keys
    from chatkeep.settings import get_settings

    with moto_tables():
        w = World()
        sid = w.session(w.todo(), "Customer Support")
        w.message(sid, MESSAGE_TEXT)
        table = get_settings().chat_table_name
        items = w.client.query(TableName=table, KeyConditionExpression="pk = :p",
                               ExpressionAttributeValues={":p": {"S": keys.session_pk("ws1", sid)}})["Items"]
        session = next(i for i in items if i["type"]["S"] == "session")
        message = next(i for i in items if i["type"]["S"] == "message")
        claim = w.client.scan(TableName=table, FilterExpression="#t = :c", ExpressionAttributeNames={"#t": "type"},
                              ExpressionAttributeValues={":c": {"S": "message_claim"}})["Items"][0]
        w.settle_stream()
        index = w.client.scan(TableName=get_settings().search_table_name)["Items"]
        return {"session": item_size(session), "message": item_size(message), "claim": item_size(claim),
                "index_entry": max(item_size(i) for i in index),
                "content_words": len(text.words(MESSAGE_TEXT)),
                "session_after_post": item_size(session) + 60}


def run(requests: dict[str, Any] | None = None, overhead: dict[str, Any] | None = None,
        stream: dict[str, Any] | None = None) -> dict[str, Any]:
    sizes = measure_items()
    s_kb, m_kb, c_kb = kb(sizes["session_after_post"]), kb(sizes["message"]), kb(sizes["claim"])
    words = sizes["content_words"]
    lines: list[str] = []
    # ---- post a message: GetItem (session, consistent) + TransactWriteItems (update session, put message,
    # put claim); then the stream function: count update (per session per batch; worst case 1 per message) and
    # one index Put per distinct content word (+ its by_session GSI entry).
    post_rru = math.ceil(sizes["session"] / 4096)
    txn_wru = 2 * (s_kb + m_kb + c_kb)
    gsi_wru = 2 * s_kb  # the session's gsi1sk (activity) changes: delete + put in gsi1 (projection ALL)
    lsi_wru = 1  # the message's lsi1 entry (KEYS_ONLY)
    count_wru = s_kb + s_kb  # stream: UpdateItem count (+ its gsi1 copy: non-key attribute changed)
    index_wru = words * (1 + 1)  # a Put per word + the by_session GSI entry (KEYS_ONLY)
    post_wru = txn_wru + gsi_wru + lsi_wru + count_wru + index_wru
    lines.append(f"post: RRU = ceil({sizes['session']} B / 4 KB) = {post_rru} (GetItem of the session, strong)")
    lines.append(f"post: WRU = transaction 2 x ({s_kb} session + {m_kb} message + {c_kb} claim KB) = {txn_wru}"
                 f" + gsi1 key change 2 x {s_kb} = {gsi_wru} + lsi1 {lsi_wru} + stream count update {s_kb} + its "
                 f"gsi1 copy {s_kb} = {count_wru} + index {words} words x (put + by_session) = {index_wru}"
                 f" -> {post_wru} WRU")
    # ---- read a session: one Query, strongly consistent, session + MESSAGES_PER_SESSION messages.
    read_bytes = sizes["session_after_post"] + MESSAGES_PER_SESSION * sizes["message"]
    read_rru = math.ceil(read_bytes / 4096)
    lines.append(f"read: RRU = ceil(({sizes['session_after_post']} + {MESSAGES_PER_SESSION} x {sizes['message']}) B"
                 f" / 4 KB) = {read_rru} (one Query, strong)")
    wru, rru = PRICES["wru_per_million"], PRICES["rru_per_million"]
    ddb_post = post_wru * wru + post_rru * rru
    ddb_read = read_rru * rru
    lines.append(f"post: DynamoDB = {post_wru} WRU x ${wru} + {post_rru} RRU x ${rru} = ${ddb_post:.2f} per million")
    lines.append(f"read: DynamoDB = {read_rru} RRU x ${rru} = ${ddb_read:.2f} per million")
    gb_s_price = f"${PRICES['lambda_gb_s']:.10f}".rstrip("0")
    request_price = f"${PRICES['lambda_per_million_requests']:.2f}"
    per_gb_s = f"{PRICES['memory_gb']} GB x {gb_s_price} x 1e6"  # seconds -> $ per million
    lambda_price = f"/ 1000 x {per_gb_s} + {request_price}"
    # ---- Lambda: measured warm handler CPU (section 3) scaled to 512 MB + assumed DynamoDB round trips.
    cpu = {"post": 0.5, "read": 0.6}
    if overhead:
        cpu["post"] = overhead.get("createTodoChatMessage", {}).get("handler_cpu_ms", cpu["post"])
        cpu["read"] = overhead.get("getOneTodoChatSession", {}).get("handler_cpu_ms", cpu["read"])
    post_ms = math.ceil(cpu["post"] * VCPU_SCALE + DDB_RTT_MS["read"] + DDB_RTT_MS["transaction"])
    read_ms = math.ceil(cpu["read"] * VCPU_SCALE + DDB_RTT_MS["read"])
    gb_s = PRICES["memory_gb"] / 1000
    lam_post = post_ms * gb_s * PRICES["lambda_gb_s"] * 1e6 + PRICES["lambda_per_million_requests"]
    lam_read = read_ms * gb_s * PRICES["lambda_gb_s"] * 1e6 + PRICES["lambda_per_million_requests"]
    lines.append(f"lambda post: ceil({cpu['post']:.2f} ms CPU x {VCPU_SCALE:.2f} + {DDB_RTT_MS['read']:.0f} + "
                 f"{DDB_RTT_MS['transaction']:.0f} ms DynamoDB) = {post_ms} ms {lambda_price}"
                 f" = ${lam_post:.2f}")
    lines.append(f"lambda read: ceil({cpu['read']:.2f} ms CPU x {VCPU_SCALE:.2f} + {DDB_RTT_MS['read']:.0f} ms "
                 f"DynamoDB) = {read_ms} ms {lambda_price} = ${lam_read:.2f}")
    lam_stream = 0.0
    if stream and stream.get("records_per_s"):
        # ~4 stream records per message (message, claim, session MODIFY, the count update's MODIFY)
        per_msg_s = 4 / stream["records_per_s"]
        lam_stream = per_msg_s * PRICES["memory_gb"] * PRICES["lambda_gb_s"] * 1e6 * VCPU_SCALE \
            + PRICES["lambda_per_million_requests"] * 4 / 100
        lines.append(f"lambda stream: 4 records/message / {stream['records_per_s']:.0f} records/s x {VCPU_SCALE:.2f} "
                     f"x {per_gb_s} + {request_price} x 4/100 batches = ${lam_stream:.2f}")
    rows = [
        ["1M messages posted", post_rru, post_wru, ddb_post, lam_post + lam_stream, ddb_post + lam_post + lam_stream],
        ["1M session reads", read_rru, 0, ddb_read, lam_read, ddb_read + lam_read],
    ]
    note = (f"Prices: {PRICES['region']} list prices (DynamoDB on-demand since {PRICES['since']}): ${wru}/M WRU, "
            f"${rru}/M RRU, Lambda arm64 {gb_s_price}/GB-s, "
            f"{request_price}/M requests, {PRICES['memory_gb'] * 1024:.0f} MB. Item sizes "
            f"measured: session {sizes['session']} B, message {sizes['message']} B, claim {sizes['claim']} B, "
            f"index entry {sizes['index_entry']} B; message of "
            f"{words} distinct words.\n\n" + "\n".join(f"    {line}" for line in lines))
    table = print_table("Cost model (USD per 1 million operations, on demand)",
                        ["per", "RRU each", "WRU each", "DynamoDB $", "Lambda $", "total $"],
                        [[*row[:3], *(f"{usd:.2f}" for usd in row[3:])] for row in rows], note)
    return {"sizes": sizes, "arithmetic": lines, "rows": rows, "prices": PRICES, "table": table}


if __name__ == "__main__":
    import bench.common  # noqa: F401

    run()
