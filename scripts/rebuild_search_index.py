"""Rebuild the search index from the chat table, in the key layout of the deployed code, and remove the entries of
the layout before it (docs/architecture.md, "Limits and scale": a deployment whose index predates the spread
keys runs this once after deploying).

The index is derived data: title words of every session and content words of every message (the first 32 KB),
computed by the stream processor's own functions (`chatkeep.stream.processor.word_entries` / `content_entries`),
so a rebuilt entry is the entry the stream processor would have written. Steps:

1. scan the chat table (sessions and messages) and put their entries (BatchWriteItem, 25 a request, retried);
2. record in each container item the shards of its sessions (`shards`, `sharded`: the keys search reads; a
   container written before the record kept none, and its sessions' entries are now in their shards);
3. delete every entry whose key is not of the current layout (a container key without `#I#`);
4. sessions deleted while it ran: their cascade may have run before step 1 put their entries back, so the
   entries of every session found in step 1 that is gone now are deleted (through the `by_session` GSI).

Safe to run while the service runs and to run again: every write is a Put or Delete of a fixed key, and the
stream processor writes the same keys. Until step 1 ends, search finds only sessions written since the deploy.

Usage (credentials and region from the environment, as for the AWS CLI):
  python scripts/rebuild_search_index.py --chat-table NAME --search-table NAME [--keep-old] [--endpoint-url URL]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "layers" / "common") not in sys.path:
    sys.path.insert(0, str(ROOT / "layers" / "common"))

WRITE_CHUNK = 500  # entries put per SearchIndex.write call
BATCH_GET = 100  # DynamoDB's limit per BatchGetItem


@dataclass
class Rebuilt:
    sessions: int = 0
    messages: int = 0
    entries_put: int = 0
    old_entries_deleted: int = 0
    containers_recorded: int = 0
    gone_sessions_swept: int = 0


def _scan(client: Any, table: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    start: dict[str, Any] | None = None
    while True:
        page = client.scan(TableName=table, **kwargs, **({"ExclusiveStartKey": start} if start else {}))
        yield from page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def rebuild(client: Any, chat_table: str, search_table: str, *, keep_old: bool = False) -> Rebuilt:
    from chatkeep.repository import keys
    from chatkeep.repository.codec import attr_value
    from chatkeep.repository.items import container_key, record_shards
    from chatkeep.repository.search_index import SearchIndex
    from chatkeep.stream.processor import TITLE, content_entries, word_entries

    index = SearchIndex(client=client, table_name=search_table)
    done = Rebuilt()
    pending: list[Any] = []
    seen_sessions: set[tuple[str, int]] = set()
    sessions_of: dict[tuple[str, int], set[int]] = {}

    def flush() -> None:
        if pending:
            index.write(puts=pending)
            done.entries_put += len(pending)
            pending.clear()

    for item in _scan(client, chat_table, FilterExpression="#t IN (:s, :m)",
                      ExpressionAttributeNames={"#t": "type"},
                      ExpressionAttributeValues={":s": {"S": "session"}, ":m": {"S": "message"}},
                      ProjectionExpression="#t, ws, sid, cid, title, content"):
        ws, sid, cid = attr_value(item, "ws"), attr_value(item, "sid"), attr_value(item, "cid")
        if not isinstance(ws, str) or not isinstance(sid, int) or not isinstance(cid, int):
            continue
        seen_sessions.add((ws, sid))
        sessions_of.setdefault((ws, cid), set()).add(sid)
        if attr_value(item, "type") == "session":
            done.sessions += 1
            pending += word_entries(ws, cid, sid, [attr_value(item, "title")], TITLE)
        else:
            done.messages += 1
            pending += content_entries(ws, cid, sid, [attr_value(item, "content")])
        if len(pending) >= WRITE_CHUNK:
            flush()
    flush()

    for (ws, cid), sids in sorted(sessions_of.items()):
        try:
            client.update_item(**record_shards({"TableName": chat_table, "Key": container_key(ws, cid),
                                                "ConditionExpression": "attribute_exists(pk)"}, sids))
            done.containers_recorded += 1
        except client.exceptions.ConditionalCheckFailedException:
            pass  # no container item: nothing lists or searches it

    if not keep_old:
        old = [{"pk": i["pk"], "sk": i["sk"]}
               for i in _scan(client, search_table, ProjectionExpression="pk, sk") if "#I#" not in i["pk"]["S"]]
        index.delete_keys(old)
        done.old_entries_deleted = len(old)

    ordered = sorted(seen_sessions)
    for start in range(0, len(ordered), BATCH_GET):
        chunk = {keys.session_pk(ws, sid): (ws, sid) for ws, sid in ordered[start:start + BATCH_GET]}
        request: dict[str, Any] = {chat_table: {
            "Keys": [{"pk": {"S": pk}, "sk": {"S": keys.SESSION_SK}} for pk in chunk],
            "ConsistentRead": True, "ProjectionExpression": "pk"}}
        while request:
            resp = client.batch_get_item(RequestItems=request)
            for found in resp.get("Responses", {}).get(chat_table, []):
                chunk.pop(found["pk"]["S"], None)
            request = resp.get("UnprocessedKeys") or {}
        for ws, sid in chunk.values():  # gone since the scan
            index.delete_session_entries(ws, sid)
            done.gone_sessions_swept += 1
    return done


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chat-table", required=True)
    parser.add_argument("--search-table", required=True)
    parser.add_argument("--keep-old", action="store_true", help="leave the entries of the old layout in place")
    parser.add_argument("--endpoint-url", help="a local DynamoDB (chatkeep dev), not AWS")
    args = parser.parse_args(argv)
    client = boto3.client("dynamodb", endpoint_url=args.endpoint_url)
    done = rebuild(client, args.chat_table, args.search_table, keep_old=args.keep_old)
    print(f"sessions {done.sessions}, messages {done.messages}: {done.entries_put} entries put; "
          f"{done.old_entries_deleted} entries of the old layout deleted; "
          f"{done.gone_sessions_swept} sessions deleted meanwhile swept")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
