"""The stream function's access to the chat table: exact message counts and cascades.

Counts use the per-session sequence-number watermark of docs/architecture.md ("The stream processor"): the
session item carries `count_seq`, the (40-digit zero-padded) stream sequence number of the last message
record counted. One conditional UpdateItem per session per batch adds the records newer than it and moves
it forward; a replay (the same batch, or a suffix of it) fails the condition, reads the watermark from
ALL_OLD and counts only what is newer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chatkeep.repository import keys
from chatkeep.repository.batch import TableAccess
from chatkeep.repository.codec import attr_value, from_av, to_av
from chatkeep.repository.errors import is_condition_refused, refused_item

SEQ_DIGITS = 40  # DynamoDB stream sequence numbers are decimal strings of up to 40 digits
MAX_COUNT_ATTEMPTS = 4


def pad_seq(sequence_number: int | str) -> str:
    """Stream sequence numbers compare as numbers; padded to 40 digits they compare as strings too."""
    return f"{int(sequence_number):0{SEQ_DIGITS}d}"


@dataclass(frozen=True, slots=True)
class CountRecord:
    """A message INSERT record, reduced to what the count needs."""

    sequence_number: int
    created_at: str


@dataclass(slots=True)
class CountResult:
    counted: int  # records added to message_count by this call (0 on a full replay)
    session_gone: bool = False
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message found in a session partition during a cascade."""

    key: dict[str, Any]  # low-level {pk, sk}
    message_id: int | None
    container_id: int | None
    content: str | None


def parse_starter_key(value: Any, workspace_id: str, owner: str | None) -> tuple[str, str] | None:
    """The session's `starter_key` -> (pk, sk) of its starter pointer.

    Accepted spellings (the API layer writes one of them): a map {pk, sk}; a list [pk, sk]; a string
    `W#{ws}#U#{sub}#STARTER#{slug}` or `W#{ws}#U#{sub}|STARTER#{slug}`; or just the slug part
    (`STARTER#{slug}` or `{slug}`), the user then being the session's owner."""
    if value is None:
        return None
    if isinstance(value, dict) and "pk" in value and "sk" in value:
        return str(value["pk"]), str(value["sk"])
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return str(value[0]), str(value[1])
    if not isinstance(value, str):
        return None
    marker = value.find("STARTER#")
    if marker > 0:
        pk = value[:marker].rstrip("#|")
        return pk, value[marker:]
    if owner is None:
        return None
    slug = value[len("STARTER#") :] if value.startswith("STARTER#") else value
    return keys.user_pk(workspace_id, owner), keys.starter_sk(slug or None)


class StreamStore(TableAccess):
    settings_table = "chat_table_name"

    # ---------------------------------------------------------------- counts

    def apply_message_counts(
        self, workspace_id: str, session_id: int, records: Sequence[CountRecord]
    ) -> CountResult:
        """Add the message INSERT records of one session (one batch) to its `message_count`, exactly once.

        One conditional UpdateItem when nothing was seen before; on a replay the condition fails, the
        ALL_OLD image gives the watermark, and the records newer than it (if any) are added with a
        condition on that exact watermark. A session that no longer exists is skipped (its cascade
        follows in the stream)."""
        pending = sorted(records, key=lambda r: r.sequence_number)
        result = CountResult(counted=0)
        if not pending:
            return result
        key = {"pk": to_av(keys.session_pk(workspace_id, session_id)), "sk": to_av(keys.SESSION_SK)}
        watermark: str | None = None  # None: first attempt, condition "older than the first record"
        while pending:
            if result.attempts >= MAX_COUNT_ATTEMPTS:
                raise RuntimeError(f"count watermark of session {session_id} kept moving")
            result.attempts += 1
            values = {
                ":n": to_av(len(pending)),
                ":t": to_av(max(r.created_at for r in pending)),
                ":last": to_av(pad_seq(pending[-1].sequence_number)),
            }
            if watermark is None:
                condition = "attribute_exists(pk) AND (attribute_not_exists(count_seq) OR count_seq < :first)"
                values[":first"] = to_av(pad_seq(pending[0].sequence_number))
            else:
                condition = "attribute_exists(pk) AND count_seq = :old"
                values[":old"] = to_av(watermark)
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=key,
                    UpdateExpression="ADD message_count :n SET last_message_at = :t, count_seq = :last",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except Exception as exc:
                if not is_condition_refused(exc):
                    raise
                old = refused_item(exc)
                if not old or "count_seq" not in old:
                    if not old:
                        result.session_gone = True
                        return result
                    # count_seq vanished between tries (cannot happen: only we write it); start over
                    watermark = None
                    continue
                watermark = from_av(old["count_seq"])
                pending = [r for r in pending if pad_seq(r.sequence_number) > watermark]
                continue
            result.counted = len(pending)
            return result
        return result

    # ---------------------------------------------------------------- cascades

    def iter_message_pages(self, workspace_id: str, session_id: int) -> Iterator[list[MessageRef]]:
        """The messages left in a session partition, one Query page at a time (strongly consistent)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :m)",
            "ExpressionAttributeValues": {
                ":pk": to_av(keys.session_pk(workspace_id, session_id)),
                ":m": to_av(keys.MESSAGE_SK_PREFIX),
            },
            "ProjectionExpression": "pk, sk, mid, cid, content",
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            refs = []
            for item in page.get("Items", []):
                mid = attr_value(item, "mid") if "mid" in item else _mid_from_sk(item["sk"]["S"])
                refs.append(
                    MessageRef(
                        key={"pk": item["pk"], "sk": item["sk"]},
                        message_id=mid,
                        container_id=attr_value(item, "cid"),
                        content=attr_value(item, "content"),
                    )
                )
            if refs:
                yield refs
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def delete_messages(self, workspace_id: str, refs: Iterable[MessageRef]) -> int:
        """Delete messages and their message id claims, 25 per BatchWriteItem (claims first: a claim
        without its message is harmless, and a retry still finds the message and so its claim).
        Returns the number of BatchWriteItem calls."""
        claims: dict[str, dict[str, Any]] = {}
        messages: dict[tuple[str, str], dict[str, Any]] = {}
        for ref in refs:
            if ref.message_id is not None:
                pk = keys.message_claim_pk(workspace_id, ref.message_id)
                claims[pk] = {"DeleteRequest": {"Key": {"pk": to_av(pk), "sk": to_av(keys.CLAIM_SK)}}}
            messages[(ref.key["pk"]["S"], ref.key["sk"]["S"])] = {"DeleteRequest": {"Key": ref.key}}
        calls = 0
        if claims:
            calls += self.batch_write(list(claims.values()))
        if messages:
            calls += self.batch_write(list(messages.values()))
        return calls

    def delete_starter_pointer(self, pointer: tuple[str, str], session_id: int) -> bool:
        """Delete the starter pointer only if it still names this session (a conditional DeleteItem):
        a newer starter session may already have replaced it. True when deleted."""
        pk, sk = pointer
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": to_av(pk), "sk": to_av(sk)},
                ConditionExpression="sid = :n OR sid = :s",
                ExpressionAttributeValues={":n": to_av(session_id), ":s": to_av(str(session_id))},
            )
        except Exception as exc:
            if is_condition_refused(exc):
                return False
            raise
        return True


def _mid_from_sk(sk: str) -> int | None:
    # M#{created_at}#{mid:010d}
    tail = sk.rsplit("#", 1)[-1]
    return int(tail) if tail.isdigit() else None


__all__ = [
    "CountRecord",
    "CountResult",
    "MessageRef",
    "StreamStore",
    "pad_seq",
    "parse_starter_key",
]
