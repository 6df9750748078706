"""The floor of the peers section: a chat history as the DynamoDB docs sketch it for one table, one item per
message under the conversation's partition key, read back with a Query by session. No API, no owner checks,
no lifecycle, no search: the fewest requests and bytes a conversation can cost (bench/README.md, Peers)."""

from __future__ import annotations

import time
import uuid
from typing import Any

KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
ATTRIBUTES = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]


def create_table(client: Any, name: str) -> None:
    client.create_table(TableName=name, KeySchema=KEY_SCHEMA, AttributeDefinitions=ATTRIBUTES,
                        BillingMode="PAY_PER_REQUEST")


class PlainChatHistory:
    """pk = SESSION#<id>, sk = MSG#<UTC time>#<random>: sorted by time, unique without a read."""

    def __init__(self, client: Any, table: str, session_id: str) -> None:
        self.client, self.table, self.pk = client, table, f"SESSION#{session_id}"

    def append(self, role: str, content: str) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
        self.client.put_item(TableName=self.table, Item={
            "pk": {"S": self.pk}, "sk": {"S": f"MSG#{stamp}#{uuid.uuid4().hex[:8]}"},
            "role": {"S": role}, "content": {"S": content}, "created_at": {"S": stamp}})

    def history(self, newest: int | None = None) -> list[dict[str, str]]:
        """Oldest first; `newest`: only the last n messages (one Query, newest first, reversed)."""
        query: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "pk = :pk",
                                 "ExpressionAttributeValues": {":pk": {"S": self.pk}}}
        if newest is not None:
            query.update(Limit=newest, ScanIndexForward=False)
        items: list[dict[str, Any]] = []
        while True:
            page = self.client.query(**query)
            items += page["Items"]
            if newest is not None or "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        messages = [{"role": i["role"]["S"], "content": i["content"]["S"]} for i in items]
        return messages[::-1] if newest is not None else messages
