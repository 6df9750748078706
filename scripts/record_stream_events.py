"""Record the sample DynamoDB Streams events in events/ from REAL stream records.

Runs the service layer against moto (tables created from template.yaml), reads the chat table's stream
through the DynamoDB Streams API and writes each case as a Lambda event (`{"Records": [...]}`):

  events/dynamodb_insert_message.json        a message INSERT
  events/dynamodb_insert_session.json        a session INSERT (title words)
  events/dynamodb_modify_session_title.json  a session MODIFY that renames it
  events/dynamodb_remove_session.json        a session REMOVE by the API (DELETE /v1/sessions/{id})
  events/dynamodb_ttl_remove_session.json    a session REMOVE by DynamoDB TTL (service userIdentity)

Usage: .venv/bin/python scripts/record_stream_events.py [--out events]
(then e.g. `sam local invoke StreamProcessorFunction -e events/dynamodb_insert_message.json`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

for sub in ("layers/common", "local"):
    sys.path.insert(0, str(ROOT / sub))
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "CHAT_TABLE_NAME": "ChatTable", "SEARCH_TABLE_NAME": "SearchIndexTable",
    "IDEMPOTENCY_TABLE_NAME": "IdempotencyTable",
})
os.environ.pop("DYNAMODB_ENDPOINT_URL", None)


def record() -> dict[str, list[dict[str, Any]]]:
    from chatkeep import aws
    from chatkeep.auth import Principal
    from chatkeep.repository import keys
    from chatkeep.repository.codec import to_av
    from chatkeep.repository.dynamodb import DynamoDBChatRepository
    from chatkeep.service import ChatService
    from chatkeep.settings import get_settings
    from chatkeep_local.harness import reset_caches
    from chatkeep_local.stream_reader import StreamReader
    from chatkeep_local.template import create_tables, load_template
    from moto import mock_aws

    reset_caches()
    with mock_aws():
        client = aws.dynamodb()
        create_tables(client, load_template(ROOT / "template.yaml"))
        settings = get_settings()
        reader = StreamReader(settings.chat_table_name)
        service = ChatService(DynamoDBChatRepository())
        user = Principal(sub="user-123", workspace_id="acme", name="Ada", scopes=frozenset(), is_service=False)

        def only(records: list[dict], event: str, sk: str | None = None) -> list[dict]:
            picked = [r for r in records if r["eventName"] == event
                      and (sk is None or r["dynamodb"]["Keys"]["sk"]["S"].startswith(sk))]
            assert len(picked) == 1, (event, sk, [r["eventName"] for r in records])
            return picked

        session = service.create_session(user, 4242, title="Café planning")
        events = {"dynamodb_insert_session": only(reader.read_new(), "INSERT", "S")}
        service.post_message(user, session.id, content="Résumé of the Élan meeting: ship the beta")
        events["dynamodb_insert_message"] = only(reader.read_new(), "INSERT", "M#")
        service.update_session(user, session.id, title="Beta launch planning")
        events["dynamodb_modify_session_title"] = only(reader.read_new(), "MODIFY", "S")
        service.delete_session(user, session.id)
        events["dynamodb_remove_session"] = only(reader.read_new(), "REMOVE", "S")

        expiring = service.create_session(user, 4242, title="Old thread")
        reader.read_new()
        # DynamoDB TTL deletes the item as the service principal: the record is moto's REMOVE record
        # of that delete, plus the userIdentity that AWS adds to TTL deletions.
        client.delete_item(TableName=settings.chat_table_name,
                           Key={"pk": to_av(keys.session_pk("acme", expiring.id)), "sk": to_av("S")})
        ttl = only(reader.read_new(), "REMOVE", "S")
        ttl[0]["userIdentity"] = dict(TTL_IDENTITY)
        events["dynamodb_ttl_remove_session"] = ttl
    reset_caches()
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "events"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, records in record().items():
        path = out / f"{name}.json"
        path.write_text(json.dumps({"Records": records}, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
