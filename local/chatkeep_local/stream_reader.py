"""Reads a table's stream on demand, records shaped as Lambda delivers them: what the tests, the benchmark and
scripts/record_stream_events.py feed to the stream function in process (`chatkeep dev` runs the event source
mapping itself: chatkeep_local.streams.StreamPoller). In AWS, Lambda's event source mapping does this."""

from __future__ import annotations

from typing import Any

from chatkeep import aws
from chatkeep.settings import get_settings

from chatkeep_local.streams import to_lambda_record


class StreamReader:
    """Every record written to the table's stream since the previous `read_new()`, Lambda-shaped
    (chatkeep_local.streams.to_lambda_record, the one record shaper).

    The client is built with the classic regional endpoint (`streams.dynamodb.{region}.amazonaws.com`)
    or the configured DynamoDB endpoint: botocore >= 1.40 resolves DescribeStream/GetRecords calls that
    carry a StreamArn to the account-based `{account}.streams-ddb.{region}` host, which moto's request
    router does not know (it answers 404 "Not yet implemented")."""

    def __init__(
        self,
        table_name: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any | None = None,
        dynamodb_client: Any | None = None,
    ) -> None:
        settings = get_settings()
        self.table_name = table_name
        self.region = region or settings.aws_region
        self._ddb = dynamodb_client
        if client is None:
            import boto3

            url = (
                endpoint_url
                or settings.dynamodb_endpoint_url
                or f"https://streams.dynamodb.{self.region}.amazonaws.com"
            )
            client = boto3.client("dynamodbstreams", region_name=self.region, endpoint_url=url)
        self.client = client
        self._positions: dict[str, str] = {}  # shard id -> last sequence number read
        self._arn: str | None = None

    @property
    def stream_arn(self) -> str:
        if self._arn is None:
            ddb = self._ddb or aws.dynamodb()
            self._arn = str(ddb.describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"])
        return self._arn

    def read_new(self) -> list[dict[str, Any]]:
        """Every record written since the previous call (all of them on the first), Lambda-shaped,
        shards in lineage order (parents first), each shard in sequence order."""
        description = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        shards = description.get("Shards", [])
        by_id = {s["ShardId"]: s for s in shards}
        ordered: list[dict[str, Any]] = []
        seen: set[str] = set()

        def visit(shard: dict[str, Any]) -> None:
            if shard["ShardId"] in seen:
                return
            seen.add(shard["ShardId"])
            parent = by_id.get(shard.get("ParentShardId") or "")
            if parent is not None:
                visit(parent)
            ordered.append(shard)

        for shard in shards:
            visit(shard)
        out: list[dict[str, Any]] = []
        for shard in ordered:
            sid = shard["ShardId"]
            kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": sid}
            if sid in self._positions:
                kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self._positions[sid])
            else:
                kwargs["ShardIteratorType"] = "TRIM_HORIZON"
            iterator = self.client.get_shard_iterator(**kwargs)["ShardIterator"]
            while iterator:
                page = self.client.get_records(ShardIterator=iterator, Limit=1000)
                records = page.get("Records", [])
                if not records:
                    break
                for record in records:
                    out.append(to_lambda_record(record, table=self.table_name, stream_arn=self.stream_arn,
                                                region=self.region))
                    self._positions[sid] = record["dynamodb"]["SequenceNumber"]
                iterator = page.get("NextShardIterator")
        return out


__all__ = ["StreamReader"]
