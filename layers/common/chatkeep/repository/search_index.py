"""The search index table (docs/architecture.md, "Search table"): written only by the stream function.

Item: pk = W#{ws}#C#{cid}#I#{first character of the word}#{sid mod SEARCH_SHARDS}, sk = {word}#{sid}#{t|c},
spk = W#{ws}#S#{sid} (GSI `by_session`), sid, word. One container's entries are spread over 64 keys per first
character (keys.search_pk), so no key carries more than a small share of a busy container's index writes.

Read side (the APIs): `matching_sessions` runs, per query word, one Query on `begins_with(sk, word)` per key the
word can be under (paginated; never a Scan; the Queries of a word run in parallel) and intersects the session
ids. The first (longest) word reads the shards of its first character that the container's sessions are in (the
container item records them); later words read only the shards of the sessions still matching.
Write side (the stream function): `write` puts/deletes entries with BatchWriteItem, 25 per request,
retrying UnprocessedItems with exponential backoff and full jitter, bounded; what is still unwritten
after that is raised as `UnwrittenItems` so the caller can fail exactly the sessions concerned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from chatkeep.repository import keys
from chatkeep.repository.batch import BATCH_WRITE_LIMIT, TableAccess
from chatkeep.repository.codec import from_av, to_av

BY_SESSION_INDEX = "by_session"
TITLE = "t"
CONTENT = "c"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One word of one session: a title word (field 't') or a content word (field 'c')."""

    workspace_id: str
    container_id: int
    session_id: int
    word: str
    field: str

    def key(self) -> dict[str, Any]:
        return {
            "pk": to_av(keys.search_pk(self.workspace_id, self.container_id, self.word,
                                       keys.search_shard(self.session_id))),
            "sk": to_av(keys.search_sk(self.word, self.session_id, self.field)),
        }

    def item(self) -> dict[str, Any]:
        return {
            **self.key(),
            "spk": to_av(keys.search_session_pk(self.workspace_id, self.session_id)),
            "sid": to_av(self.session_id),
            "word": to_av(self.word),
        }


def key_id(key: dict[str, Any]) -> tuple[str, str]:
    """A hashable identity for a low-level key {pk, sk}."""
    return (key["pk"]["S"], key["sk"]["S"])


def request_key(request: dict[str, Any]) -> tuple[str, str]:
    if "PutRequest" in request:
        return key_id(request["PutRequest"]["Item"])
    return key_id(request["DeleteRequest"]["Key"])


def parse_sk(sk: str) -> tuple[str, int, str]:
    """`{word}#{sid:010d}#{t|c}` -> (word, sid, field). Words never contain '#'."""
    word, sid, field = sk.rsplit("#", 2)
    return word, int(sid), field


class SearchIndex(TableAccess):
    settings_table = "search_table_name"

    # ---------------------------------------------------------------- read side (the APIs)

    def matching_sessions(
        self, workspace_id: str, container_id: int, query_words: list[str],
        session_shards: Iterable[int] | None = None,
    ) -> dict[int, bool]:
        """Sessions of the container in which every query word is a prefix of some indexed word.

        Returns {session id: True when every query word matched a TITLE word}. Per distinct query word, one
        paginated Query per key it can be under: for the first (longest) word, one per shard the container's
        sessions are in (`session_shards`, the container's record; None: all SEARCH_SHARDS), then only the
        shards of the sessions still matching (stops early when the intersection is empty); query words are
        expected already normalised by chatkeep.text.words."""
        distinct = [w for w in dict.fromkeys(query_words) if w]
        if not distinct:
            return {}
        result: dict[int, bool] | None = None
        # Longest words first: usually the most selective, so an empty intersection stops sooner.
        for word in sorted(distinct, key=len, reverse=True):
            only = None if result is None else set(result)
            shards = session_shards if only is None else {keys.search_shard(sid) for sid in only}
            hits = self._word_hits(keys.search_pks(workspace_id, container_id, word, shards), word, only)
            if result is None:
                result = hits
            else:
                result = {sid: result[sid] and hits[sid] for sid in result if sid in hits}
            if not result:
                return {}
        return result or {}

    def _word_hits(self, pks: list[str], word: str, only: set[int] | None) -> dict[int, bool]:
        """{session id: a title word matched} over the keys `pks` (their Queries in parallel)."""
        pages = self.in_parallel(lambda pk: self._key_hits(pk, word, only), pks)
        hits: dict[int, bool] = {}
        for page in pages:  # a session lives in one shard: the maps never share a key
            hits.update(page)
        return hits

    def _key_hits(self, pk: str, word: str, only: set[int] | None) -> dict[int, bool]:
        hits: dict[int, bool] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :w)",
            "ExpressionAttributeValues": {":pk": to_av(pk), ":w": to_av(word)},
            "ProjectionExpression": "sk",
        }
        while True:
            page = self.client.query(**kwargs)
            for item in page.get("Items", []):
                _, sid, field = parse_sk(from_av(item["sk"]))
                if only is not None and sid not in only:
                    continue
                hits[sid] = hits.get(sid, False) or field == TITLE
            last = page.get("LastEvaluatedKey")
            if not last:
                return hits
            kwargs["ExclusiveStartKey"] = last

    # ---------------------------------------------------------------- write side (the stream function)

    def write(self, puts: Iterable[IndexEntry] = (), deletes: Iterable[IndexEntry] = ()) -> int:
        """Put and delete entries (deduplicated; a key both put and deleted is put). Returns the number
        of BatchWriteItem calls. Raises UnwrittenItems (with the requests not applied)."""
        requests: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in deletes:
            key = entry.key()
            requests[key_id(key)] = {"DeleteRequest": {"Key": key}}
        for entry in puts:
            item = entry.item()
            requests[key_id(item)] = {"PutRequest": {"Item": item}}
        if not requests:
            return 0
        return self.batch_write(list(requests.values()))

    def delete_keys(self, key_list: Iterable[dict[str, Any]]) -> int:
        """Delete entries by their low-level keys {pk, sk} (deduplicated)."""
        unique = {key_id(k): {"DeleteRequest": {"Key": {"pk": k["pk"], "sk": k["sk"]}}} for k in key_list}
        if not unique:
            return 0
        return self.batch_write(list(unique.values()))

    def session_entry_keys(self, workspace_id: str, session_id: int) -> Iterator[dict[str, Any]]:
        """Every entry key of a session, from the `by_session` GSI (KEYS_ONLY; eventually consistent)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": BY_SESSION_INDEX,
            "KeyConditionExpression": "spk = :spk",
            "ExpressionAttributeValues": {":spk": to_av(keys.search_session_pk(workspace_id, session_id))},
        }
        while True:
            page = self.client.query(**kwargs)
            for item in page.get("Items", []):
                yield {"pk": item["pk"], "sk": item["sk"]}
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def delete_session_entries(
        self, workspace_id: str, session_id: int, already_deleted: set[tuple[str, str]] | None = None
    ) -> int:
        """Delete every entry of a session found through `by_session`, page by page (25 per request).
        `already_deleted` (key ids) are skipped: the GSI may still show keys the caller just deleted.
        Returns the number of entries deleted."""
        skip = already_deleted or set()
        deleted = 0
        batch: dict[tuple[str, str], dict[str, Any]] = {}
        for key in self.session_entry_keys(workspace_id, session_id):
            kid = key_id(key)
            if kid in skip:
                continue
            batch[kid] = key
            if len(batch) >= BATCH_WRITE_LIMIT * 4:
                self.delete_keys(batch.values())
                deleted += len(batch)
                batch.clear()
        if batch:
            self.delete_keys(batch.values())
            deleted += len(batch)
        return deleted
