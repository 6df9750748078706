"""DynamoDB TTL, emulated: delete items whose TTL attribute (epoch seconds, a Number) is <= now.

As in DynamoDB: only Number attributes count; items whose TTL is more than five years in the past are
never deleted; the delete is conditional on the item still being expired (an update that pushed the
TTL forward wins); and the REMOVE stream record carries the service identity
`{"type": "Service", "principalId": "dynamodb.amazonaws.com"}` (the poller adds it for the keys
registered here, since moto's records have no userIdentity).

"Now" is chatkeep.clock.now(), so `POST /_local/clock` moves TTL too. Finding expired items uses a
Scan: fine for an emulator over a local table (DynamoDB does this in the background at no cost to
the table); the product itself never scans.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from chatkeep_local.streams import SweptKeys

log = logging.getLogger("chatkeep_local.ttl")

FIVE_YEARS_S = 5 * 365 * 86400


class TtlSweeper(threading.Thread):
    def __init__(
        self,
        client: Any,
        ttl_attributes: Mapping[str, str],  # table name -> TTL attribute
        swept: SweptKeys,
        now: Callable[[], float],
        interval: float = 5.0,
    ):
        super().__init__(name="ttl-sweeper", daemon=True)
        self.client = client
        self.ttl_attributes = dict(ttl_attributes)
        self.swept = swept
        self.now = now
        self.interval = interval
        self.deleted_total = 0
        self._key_names: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._stop.set()

    def _keys_of(self, table: str) -> list[str]:
        if table not in self._key_names:
            schema = self.client.describe_table(TableName=table)["Table"]["KeySchema"]
            self._key_names[table] = [k["AttributeName"] for k in schema]
        return self._key_names[table]

    def sweep_once(self) -> int:
        """One pass over every TTL table; returns how many items were deleted."""
        with self._lock:
            deleted = 0
            for table, attr in self.ttl_attributes.items():
                deleted += self._sweep_table(table, attr)
            self.deleted_total += deleted
            return deleted

    def _sweep_table(self, table: str, attr: str) -> int:
        now = int(self.now())
        key_names = self._keys_of(table)
        names = {f"#k{i}": k for i, k in enumerate(key_names)}
        names["#ttl"] = attr
        values = {":now": {"N": str(now)}, ":floor": {"N": str(now - FIVE_YEARS_S)}, ":num": {"S": "N"}}
        deleted = 0
        kwargs: dict[str, Any] = {
            "TableName": table,
            # attribute_type first: only Numbers are TTL values (and moto cannot compare S with N)
            "FilterExpression": "attribute_type(#ttl, :num) AND #ttl <= :now AND #ttl >= :floor",
            "ProjectionExpression": ", ".join(n for n in names if n.startswith("#k")),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        while True:
            page = self.client.scan(**kwargs)
            for item in page.get("Items") or []:
                key = {k: item[k] for k in key_names}
                # Register before deleting: the poller may read the REMOVE record before we return.
                self.swept.add(table, key)
                try:
                    self.client.delete_item(
                        TableName=table,
                        Key=key,
                        ConditionExpression="#ttl <= :now",
                        ExpressionAttributeNames={"#ttl": attr},
                        ExpressionAttributeValues={":now": {"N": str(now)}},
                    )
                    deleted += 1
                except self.client.exceptions.ConditionalCheckFailedException:
                    self.swept.discard(table, key)
                except Exception:
                    self.swept.discard(table, key)
                    raise
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if deleted:
            log.info("TTL: deleted %d expired item(s) from %s (%s <= %d)", deleted, table, attr, now)
        return deleted

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep_once()
            except Exception:
                log.exception("TTL sweep failed")
