"""Section "scale on paper": the write and read units per partition key of every table and index for a workload,
and the first key to pass DynamoDB's per-key limits (docs/architecture.md, "Limits and scale").

DynamoDB serves at most about 1,000 write units and 3,000 read units per second per partition key, and a table
with a local secondary index (the chat table's lsi1) never splits an item collection. So what limits a busy
container or workspace is the busiest key, not the table.

The model replays one second of a workload through `Recorder`, which spells every write and read the code
issues (the recipes below) with the product's own key builders (`chatkeep.repository.keys`), and adds up the
units per key. `bench/paper_check.py` runs a small workload through the real handlers, worker and stream
processor over moto, captures each written item's key with a botocore hook, and replays the same operations
through `Recorder`: `tests/integration/test_paper_model.py` asserts the two agree key by key, so the recipes
cannot drift from the code.

Rules (DynamoDB's): a write costs 1 unit per started KB of the item (an update: the larger image), twice inside a
transaction, and a ConditionCheck of a transaction is counted as a write of its item (the conservative reading);
every index an item is in costs its own write, 2 when the item's index sort key changes (delete + put), and
gsi1 projects ALL, so any change of a session item writes gsi1; an LSI write counts against the base key. Reads:
1 unit per started 4 KB strongly consistent, 0.5 eventually consistent. The stream processor is modelled without
coalescing (batches of one record: an upper bound; at thousands of sessions a batch of 100 records rarely holds
two messages of one session).

Words: messages are cut from this repository's English prose (docs/*.md, README.md, bench/README.md; code
removed) into runs of the workload's distinct words per message, so which first characters and words are
common is real English rather than an assumption."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from bench.common import ROOT

WCU_LIMIT = 1_000  # write units per second per partition key
RCU_LIMIT = 3_000  # read units per second per partition key
GOAL_SHARE = 0.5  # the goal: no key above half of its limits

CHAT, GSI1, LSI1 = "ChatTable", "ChatTable gsi1", "ChatTable lsi1"
SEARCH, BY_SESSION, IDEMPOTENCY = "SearchIndexTable", "SearchIndexTable by_session", "IdempotencyTable"
TARGETS = (CHAT, GSI1, LSI1, SEARCH, BY_SESSION, IDEMPOTENCY)
WORKSPACE = "ws"


@dataclass(frozen=True)
class Workload:
    name: str
    containers: int = 1
    sessions_per_container: int = 10_000
    users: int = 10_000  # no key is per user on the hot paths (starter pointers are written once per user+agent)
    messages_per_s: float = 1_000  # user messages posted per second, all containers together
    words_per_message: int = 25  # distinct words of a user message
    reply_rate: float = 1.0  # managed agent replies per user message (0: external agents only)
    reply_words: int = 150  # distinct words of a reply
    reply_chars: int = 1_200  # characters of a reply (150 distinct words are ~220 words)
    reply_first_words: int = 3  # words of the first tokens, written (and indexed) when the reply opens
    reply_persists: int = 4  # content writes while it streams (one a second: a 4 to 5 s reply)
    quota_checks: bool = True  # DailyTokenQuota set: every turn reads the day's usage first
    sessions_created_per_s: float = 20
    searches_per_s: float = 50  # per container
    search_words: int = 2
    search_matches: int = 200  # sessions an average query word matches (entries read per word)
    lists_per_s: float = 50  # per container
    rest_idempotent_posts: float = 0.2  # share of user posts sent with an Idempotency-Key

    @property
    def replies_per_s(self) -> float:
        return self.messages_per_s * self.reply_rate


# The worked example: a workspace-shared support channel, 1,000 users posting every 10 s, agents answering.
SUPPORT_CHANNEL = Workload("support channel: 100 msg/s + 100 replies/s, one container", sessions_per_container=1_000,
                           users=1_000, messages_per_s=100, searches_per_s=10, lists_per_s=10)
# The goal: one container sustains 1,000 user messages/s, each answered by a 150-word reply, with no key above 50%.
GOAL = Workload("goal: 1,000 msg/s + 1,000 replies/s (150 words), one container")
WORKLOADS = (SUPPORT_CHANNEL, GOAL)


@dataclass(frozen=True)
class Sizes:
    """Item sizes in bytes (bench/paper_check.py measures them on items the code wrote; these are its figures)."""

    session: int = 590  # after a turn: title, lifecycle, count watermark, turn and usage attributes
    container: int = 140
    message: int = 290  # a message item without its content
    claim: int = 110
    usage: int = 160
    agent: int = 190
    index_entry: int = 110
    idempotency: int = 600  # assumed: the stored response of a post (not measured)


@dataclass(frozen=True)
class Layout:
    """Where the spreadable items go: the product's keys (`CURRENT`) or the one-key-per-container layout before
    them (`ONE_KEY`), for the before/after table."""

    name: str
    search_pk: Callable[[str, int, str, int], str]  # (ws, cid, word, sid)
    search_read_pks: Callable[[str, int, str], list[str]]  # (ws, cid, query word): the keys a word reads
    activity_pk: Callable[[str, int, int], str]  # (ws, cid, sid): a session's gsi1 key
    activity_read_pks: Callable[[str, int], list[str]]
    usage_pk: Callable[[str, int], str]  # (ws, sid): where a turn's usage is added
    usage_read_pks: Callable[[str], list[str]]


def _current() -> Layout:
    from chatkeep.repository import keys

    return Layout("sharded (this code)",
                  lambda ws, cid, word, sid: keys.search_pk(ws, cid, word, keys.search_shard(sid)),
                  lambda ws, cid, word: keys.search_pks(ws, cid, word),
                  keys.activity_pk, keys.activity_pks,
                  lambda ws, sid: keys.usage_pk(ws, keys.usage_shard(sid)), keys.usage_pks)


def _one_key() -> Layout:
    from chatkeep.repository import keys

    return Layout("one key per container (before)",
                  lambda ws, cid, word, sid: keys.container_pk(ws, cid),
                  lambda ws, cid, word: [keys.container_pk(ws, cid)],
                  lambda ws, cid, sid: keys.container_pk(ws, cid), lambda ws, cid: [keys.container_pk(ws, cid)],
                  lambda ws, sid: keys.usage_pk(ws), lambda ws: [keys.usage_pk(ws)])


def kb(size: float) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: float, consistent: bool) -> float:
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


@dataclass
class KeyLoad:
    writes: float = 0.0  # item writes (the cross-check compares these)
    wcu: float = 0.0
    rcu: float = 0.0


@dataclass
class Load:
    keys: dict[tuple[str, str], KeyLoad] = field(default_factory=lambda: defaultdict(KeyLoad))

    def write_counts(self) -> dict[tuple[str, str], float]:
        return {k: v.writes for k, v in self.keys.items() if v.writes}


class Recorder:
    """The writes and reads of each operation, as the code issues them (keep in step with the repository and the
    stream processor: tests/integration/test_paper_model.py fails when they differ)."""

    def __init__(self, layout: Layout, sizes: Sizes | None = None, load: Load | None = None) -> None:
        from chatkeep import text
        from chatkeep.repository import keys

        self.layout, self.sizes, self.load = layout, sizes or Sizes(), load or Load()
        self.keys = keys
        # the simulation repeats the corpus' texts: cache their words. A message's first MAX_INDEXED_WORDS distinct
        # words are indexed (chatkeep.stream.processor.content_entries), every word of a title.
        self.words = cache(lambda t: text.words(t, text.MAX_INDEXED_WORDS))
        self.title_words = cache(text.words)

    def write(self, target: str, pk: str, units: float, weight: float = 1.0, count: float = 1.0) -> None:
        entry = self.load.keys[(target, pk)]
        entry.writes += count * weight
        entry.wcu += units * weight

    def read(self, target: str, pk: str, units: float, weight: float = 1.0) -> None:
        self.load.keys[(target, pk)].rcu += units * weight

    def _session_write(self, ws: str, cid: int, sid: int, *, txn: bool, moves_activity: bool = False,
                       check_only: bool = False, w: float = 1.0) -> None:
        """One write of a session item: the table, and gsi1 (projection ALL) unless it only checks."""
        units = kb(self.sizes.session)
        self.write(CHAT, self.keys.session_pk(ws, sid), units * (2 if txn else 1), w)
        if not check_only:
            n = 2 if moves_activity else 1
            self.write(GSI1, self.layout.activity_pk(ws, cid, sid), units * n, w, count=n)

    def _message_put(self, ws: str, sid: int, mid: int, content_chars: int, w: float) -> None:
        self.write(CHAT, self.keys.session_pk(ws, sid), 2 * kb(self.sizes.message + content_chars), w)
        self.write(LSI1, self.keys.session_pk(ws, sid), 1, w)  # KEYS_ONLY: small; counts against the session key
        self.write(CHAT, self.keys.message_claim_pk(ws, mid), 2 * kb(self.sizes.claim), w)

    # ------------------------------------------------------------ operations

    def create_session(self, ws: str, cid: int, sid: int, title: str | None, *, agent_id: int | None = None,
                       w: float = 1.0) -> None:
        """One transaction: Put session, Update container (claim) [+ ConditionCheck agent]; the stream indexes
        the title."""
        units = kb(self.sizes.session)
        self.write(CHAT, self.keys.session_pk(ws, sid), 2 * units, w)
        self.write(GSI1, self.layout.activity_pk(ws, cid, sid), units, w)
        self.write(CHAT, self.keys.container_pk(ws, cid), 2 * kb(self.sizes.container), w)
        self.write(GSI1, self.keys.container_pk(ws, cid), kb(self.sizes.container), w)  # an upper bound: unchanged
        if agent_id is not None:
            self.write(CHAT, self.keys.agent_pk(ws, agent_id), 2 * kb(self.sizes.agent), w)
        self.index(ws, cid, sid, self.title_words(title), w)

    def post(self, ws: str, cid: int, sid: int, mid: int, content: str, *, w: float = 1.0) -> None:
        """GetItem session, then one transaction (session update moving activity, message, id claim); the stream
        counts it (one UpdateItem) and indexes its words."""
        self.read(CHAT, self.keys.session_pk(ws, sid), read_units(self.sizes.session, True), w)
        self._session_write(ws, cid, sid, txn=True, moves_activity=True, w=w)
        self._message_put(ws, sid, mid, len(content.encode()), w)
        self.count(ws, cid, sid, w)
        self.index(ws, cid, sid, self.words(content), w)

    def idempotent_request(self, key: str, w: float = 1.0) -> None:
        """A REST POST with an Idempotency-Key (Powertools): the in-progress record, then the response, under a
        key of its own (a hash of workspace, caller, route and the client's key)."""
        self.write(IDEMPOTENCY, key, 2 * kb(self.sizes.idempotency), w, count=2)

    def count(self, ws: str, cid: int, sid: int, w: float = 1.0) -> None:
        """The stream processor's count update of a session (one per session per batch)."""
        self._session_write(ws, cid, sid, txn=False, w=w)

    def index(self, ws: str, cid: int, sid: int, words: Iterable[str], w: float = 1.0) -> None:
        """One entry per distinct word (BatchWriteItem) and its by_session GSI entry."""
        for word in dict.fromkeys(words):
            self.write(SEARCH, self.layout.search_pk(ws, cid, word, sid), kb(self.sizes.index_entry), w)
            self.write(BY_SESSION, self.keys.search_session_pk(ws, sid), 1, w)

    def turn(self, ws: str, cid: int, sid: int, reply_mid: int, first: str, final: str, *, persists: int,
             quota: bool, history_bytes: int = 8_000, w: float = 1.0) -> None:
        """The worker: begin, reads (quota, the turn's message, history), open the reply, persists, finish; the
        stream counts the reply at its INSERT, indexes the first tokens then, and the final content at its end."""
        k, sz = self.keys, self.sizes
        self._session_write(ws, cid, sid, txn=False, w=w)  # begin: queued -> running
        if quota:
            for pk in self.layout.usage_read_pks(ws):
                self.read(CHAT, pk, read_units(sz.usage * 4, False), w)
        self.read(CHAT, k.session_pk(ws, sid), read_units(history_bytes, True), w)
        # open_reply: session (moves activity) + the reply with its first tokens + its id claim
        self._session_write(ws, cid, sid, txn=True, moves_activity=True, w=w)
        self._message_put(ws, sid, reply_mid, len(first.encode()), w)
        self.count(ws, cid, sid, w)
        self.index(ws, cid, sid, self.words(first), w)
        reply_units = 2 * kb(sz.message + len(final.encode()))
        for _ in range(persists):  # ConditionCheck session + Update reply
            self._session_write(ws, cid, sid, txn=True, check_only=True, w=w)
            self.write(CHAT, k.session_pk(ws, sid), reply_units, w)
        # finish: session (turn ended, usage) + reply (final) + usage per workspace, day and model
        self._session_write(ws, cid, sid, txn=True, w=w)
        self.write(CHAT, k.session_pk(ws, sid), reply_units, w)
        self.write(CHAT, self.layout.usage_pk(ws, sid), 2 * kb(sz.usage), w)
        self.index(ws, cid, sid, self.words(final), w)

    def search(self, ws: str, cid: int, query_words: list[str], matches: int, w: float = 1.0) -> None:
        """A GetItem of the container (the shards its sessions are in), each query word reads its keys (upper
        bound: every shard, as the first word of a container with sessions in every shard does), then one
        BatchGetItem of the matching sessions (never hot: one item per session)."""
        self.read(CHAT, self.keys.container_pk(ws, cid), read_units(self.sizes.container, True), w)
        for word in query_words:
            pks = self.layout.search_read_pks(ws, cid, word)
            per_key = read_units(matches * self.sizes.index_entry / len(pks), False)
            for pk in pks:
                self.read(SEARCH, pk, per_key, w)

    def list_sessions(self, ws: str, cid: int, page: int = 20, w: float = 1.0) -> None:
        pks = self.layout.activity_read_pks(ws, cid)
        per_key = read_units((page / len(pks) + 1) * self.sizes.session, False)
        for pk in pks:
            self.read(GSI1, pk, per_key, w)


# ---------------------------------------------------------------- one second of a workload

@cache
def corpus_words() -> tuple[str, ...]:
    """This repository's English prose, normalised as the index normalises it."""
    from chatkeep import text

    paths = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md", ROOT / "bench" / "README.md"]
    prose = "\n".join(p.read_text(encoding="utf-8") for p in paths)
    prose = re.sub(r"```.*?```", " ", prose, flags=re.S)
    prose = re.sub(r"`[^`]*`|<[^>]+>|\([^)]*\.md[^)]*\)|https?://\S+", " ", prose)
    return tuple(m.group(0) for m in re.finditer(r"[^\W_\d]+", text.normalise(prose)))


@cache
def messages_of(distinct: int) -> tuple[str, ...]:
    """The corpus cut into consecutive runs of `distinct` distinct words (each run one message's text)."""
    out: list[str] = []
    run: dict[str, None] = {}
    for word in corpus_words():
        run.setdefault(word, None)
        if len(run) == distinct:
            out.append(" ".join(run))
            run = {}
    return tuple(out)


def simulate(workload: Workload, layout: Layout | None = None, sizes: Sizes | None = None) -> Load:
    """One second of the workload, as rates: every session posts `messages_per_s / sessions` messages a second
    (its share: a fraction), each answered at `reply_rate`, so a per-session key carries its average rate and
    every rate scales with the workload. Session ids are consecutive: they spread over the shards as random ids
    do on average. Session i's messages are run i of the corpus."""
    layout = layout or _current()
    rec = Recorder(layout, sizes)
    wl = workload
    sessions = wl.containers * wl.sessions_per_container
    user_texts, reply_texts = messages_of(wl.words_per_message), messages_of(wl.reply_words)
    share = wl.messages_per_s / sessions  # messages per second of one session
    first_sid, first_mid = 10_000, 10**9
    for i in range(sessions):
        sid, mid = first_sid + i, first_mid + 2 * i
        cid = 1 + i % wl.containers
        rec.post(WORKSPACE, cid, sid, mid, user_texts[i % len(user_texts)], w=share)
        if wl.rest_idempotent_posts:
            rec.idempotent_request(f"idempotency#{mid}", w=share * wl.rest_idempotent_posts)
        if wl.reply_rate:
            words = reply_texts[i % len(reply_texts)]
            final = " ".join([words] * max(1, wl.reply_chars // (len(words) + 1)))
            rec.turn(WORKSPACE, cid, sid, mid + 1, " ".join(words.split()[:wl.reply_first_words]), final,
                     persists=wl.reply_persists, quota=wl.quota_checks, w=share * wl.reply_rate)
    created = wl.sessions_created_per_s / wl.containers
    for c in range(wl.containers):
        for j in range(math.ceil(created)):
            sid = first_sid + sessions + c * math.ceil(created) + j
            rec.create_session(WORKSPACE, 1 + c, sid, "Customer support: billing question",
                               agent_id=7 if wl.reply_rate else None, w=min(1.0, created - j))
    query_words = [w for m in user_texts for w in m.split() if len(w) > 3]
    for c in range(wl.containers):
        for q in range(math.ceil(wl.searches_per_s)):
            words = [query_words[(q * wl.search_words + k) % len(query_words)] for k in range(wl.search_words)]
            rec.search(WORKSPACE, 1 + c, words, wl.search_matches, w=min(1.0, wl.searches_per_s - q))
        rec.list_sessions(WORKSPACE, 1 + c, w=wl.lists_per_s)
    return rec.load


# ---------------------------------------------------------------- reading the load

@dataclass(frozen=True)
class Peak:
    target: str
    key: str
    writes: float
    wcu: float
    rcu: float
    keys: int  # keys of this table or index written or read

    @property
    def share(self) -> float:
        return max(self.wcu / WCU_LIMIT, self.rcu / RCU_LIMIT)


def peaks(load: Load) -> list[Peak]:
    """Per table and index: its busiest key (by share of the per-key limits)."""
    out: list[Peak] = []
    for target in TARGETS:
        rows = [(pk, v) for (t, pk), v in load.keys.items() if t == target]
        if not rows:
            continue
        pk, v = max(rows, key=lambda r: max(r[1].wcu / WCU_LIMIT, r[1].rcu / RCU_LIMIT))
        out.append(Peak(target, pk, v.writes, v.wcu, v.rcu, len(rows)))
    return out


def first_to_pass(load: Load) -> tuple[Peak, float]:
    """The key that passes its limit first as the whole workload grows, and the factor at which it does."""
    top = max(peaks(load), key=lambda p: p.share)
    return top, (1 / top.share if top.share else math.inf)


def _key_name(pk: str) -> str:
    """Keys shown with their shape: W#ws#C#0000000001#I#s#07 -> C#1 #I#s#07."""
    return re.sub(r"#0+(\d)", r"#\1", pk.replace(f"W#{WORKSPACE}#", ""))


def table(workload: Workload, layout: Layout | None = None, sizes: Sizes | None = None) -> dict[str, Any]:
    from bench.common import print_table

    layout = layout or _current()
    load = simulate(workload, layout, sizes)
    rows = [[p.target, _key_name(p.key), round(p.wcu), f"{p.wcu / WCU_LIMIT:.0%}", round(p.rcu),
             f"{p.rcu / RCU_LIMIT:.0%}", p.keys, "OVER" if p.share > 1 else ("> 50%" if p.share > GOAL_SHARE else "ok")]
            for p in peaks(load)]
    top, factor = first_to_pass(load)
    note = (f"First key to pass its limit: {top.target} `{_key_name(top.key)}` at {factor:.2f}x this workload "
            f"({factor * workload.messages_per_s:,.0f} user messages/s"
            + (f" + {factor * workload.replies_per_s:,.0f} replies/s" if workload.reply_rate else "") + ").")
    text = print_table(f"Scale on paper: {workload.name}; {layout.name}",
                       ["table / index", "busiest key", "WCU/s", "of 1,000", "RCU/s", "of 3,000", "keys", "verdict"],
                       rows, note)
    return {"workload": workload.name, "layout": layout.name, "table": text, "first_to_pass": top.target,
            "first_key": top.key, "factor": round(factor, 3),
            "peaks": [{"target": p.target, "key": p.key, "wcu": round(p.wcu, 1), "rcu": round(p.rcu, 1),
                       "keys": p.keys} for p in peaks(load)]}


def paper_section(quick: bool = False) -> dict[str, Any]:
    from bench import paper_check

    check = paper_check.run()
    sizes = replace(Sizes(), **check["sizes"])
    results = [table(GOAL, _one_key(), sizes), table(GOAL, _current(), sizes),
               table(SUPPORT_CHANNEL, _one_key(), sizes), table(SUPPORT_CHANNEL, _current(), sizes)]
    return {"cross_check": check["summary"], "tables": results,
            "table": "\n".join([check["table"], *(r["table"] for r in results)])}
