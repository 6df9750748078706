"""Hostile input against POST /graphql, in process (moto), through chatkeep.graphql.server.handle:

- a fuzzer (hypothesis-graphql over schema.graphql: valid queries, valid mutations, and invalid documents)
  with a fixed seed and a bounded budget: zero 5xx, zero INTERNAL_SERVER_ERROR, every error coded;
- explicit cases: body size, metadata limits, depth, alias and fragment bombs, batched arrays,
  introspection, invalid UTF-8 / lone surrogates, Int overflow in deleteManyTodoChatSession, unknown APQ
  hashes, non-finite numbers. Every error has a stable code and a message a person can act on; nothing
  internal (stack traces, botocore, table names) is ever returned; refused writes write nothing."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from tests.security.support import (
    assert_gql_errors_clean,
    call_gql,
    claims,
    diff,
    gql,
    gql_code,
    gql_event,
    snapshot,
)

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "layers", "common", "chatkeep", "graphql",
                           "schema.graphql")
FUZZ_SEED = 20240607
FUZZ_BUDGET = {"queries": 200, "mutations": 200, "negative": 150}  # examples per run (bounded, derandomized)
ALICE = claims("alice", "ws1")


def _sdl() -> str:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return fh.read()


# JSON scalar (metadata): flat objects, plus nested and list values the service must refuse cleanly.
_json_leaf = st.one_of(
    st.text(max_size=40).map(nodes.String),
    st.integers(min_value=-(2**70), max_value=2**70).map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    st.booleans().map(nodes.Boolean),
    st.just(graphql.NullValueNode()),
)
_json_key = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,70}", fullmatch=True)


def _object(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.dictionaries(_json_key, values, max_size=6).map(
        lambda d: nodes.Object([graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v)
                                for k, v in d.items()]))


JSON_NODES = st.one_of(_object(_json_leaf), _object(st.one_of(_json_leaf, _object(_json_leaf))),
                       st.lists(_json_leaf, max_size=3).map(nodes.List), _json_leaf)
FUZZ_SETTINGS = settings(
    derandomize=True, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.fixture
def seeded(dynamodb: Any) -> dict[str, Any]:
    """A few real objects so generated ids sometimes land on something (alice's todo 1, session ids)."""
    from chatkeep.service import default_service

    from tests.conftest import make_principal

    agent = default_service().create_agent(make_principal("ops", "ws1", service=True), slug="helper", name="H")
    made = []
    for title in ("first", "second"):
        _, body, _ = gql("mutation($t: String){createTodoChatSession(data:{todoId: 1, title: $t}){id}}",
                         {"t": title}, claims_=ALICE)
        made.append(int(body["data"]["createTodoChatSession"]["id"]))
    gql(POST, {"d": {"sessionId": made[0], "message": "hello there"}}, claims_=ALICE)
    return {"sessions": made, "agent": agent.id}


def _check(status: int, body: dict[str, Any], raw: str, query: str) -> None:
    assert status < 500, (status, query, raw[:500])
    codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
    assert "INTERNAL_SERVER_ERROR" not in codes, (query, raw[:800])
    assert_gql_errors_clean(body, raw)


def _fuzz(strategy: st.SearchStrategy, budget: int, mode: str) -> Any:
    stats: Counter[str] = Counter()

    @seed(FUZZ_SEED)
    @settings(FUZZ_SETTINGS, max_examples=budget)
    @given(query=strategy)
    def run(query: str) -> None:
        stats["examples"] += 1
        status, body, raw = call_gql(gql_event(query, claims_=ALICE))
        _check(status, body, raw, query)
        stats.update([gql_code(body) or "ok"])

    run()
    print(f"\nfuzz[{mode}]: {dict(stats)}")
    return stats


@pytest.mark.slow
def test_fuzz_valid_queries(seeded: dict[str, Any]) -> None:
    stats = _fuzz(from_schema(_sdl(), custom_scalars={"JSON": JSON_NODES}, fields=[
        "getTodoChatSessions", "getOneTodoChatSession", "getOrCreateUserStartTodoChatSession",
        "getSearchTodoChatSessions"]), FUZZ_BUDGET["queries"], "queries")
    assert stats["examples"] >= FUZZ_BUDGET["queries"] // 2


@pytest.mark.slow
def test_fuzz_valid_mutations(seeded: dict[str, Any]) -> None:
    from hypothesis_graphql import mutations

    stats = _fuzz(mutations(_sdl(), custom_scalars={"JSON": JSON_NODES}), FUZZ_BUDGET["mutations"], "mutations")
    assert stats["examples"] >= FUZZ_BUDGET["mutations"] // 2


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["queries", "mutations"])
def test_fuzz_targeted_at_real_objects(seeded: dict[str, Any], kind: str) -> None:
    """Same generator, but every Float and Int argument is drawn from the real ids of the seeded objects
    (and a few edge values), so the operations reach the data layer instead of stopping at validation."""
    from hypothesis_graphql import mutations, queries

    floats = [*seeded["sessions"], 1.0, float(seeded["agent"]), 0.0, -1.0, 1.5, 2.0**31, 1e300]
    ints = [1, 2, 20, 100, 101, 0, -1, 60, 86400, 2**31 - 1]
    scalars = {"JSON": JSON_NODES, "Float": st.sampled_from(floats).map(nodes.Float),
               "Int": st.sampled_from(ints).map(nodes.Int)}
    build = queries if kind == "queries" else mutations
    stats = _fuzz(build(_sdl(), custom_scalars=scalars), FUZZ_BUDGET[kind], f"targeted {kind}")
    assert stats["ok"] > 0, "the targeted fuzzer never reached a successful operation"


@pytest.mark.slow
def test_fuzz_invalid_documents(seeded: dict[str, Any]) -> None:
    """Mode.NEGATIVE: documents that break the schema (wrong types, missing arguments): all refused with a
    code (GRAPHQL_VALIDATION_FAILED / BAD_USER_INPUT), never a crash."""
    stats = _fuzz(from_schema(_sdl(), custom_scalars={"JSON": JSON_NODES}, mode=Mode.NEGATIVE),
                  FUZZ_BUDGET["negative"], "negative")
    assert stats["examples"] >= FUZZ_BUDGET["negative"] // 2


@pytest.mark.slow
@seed(FUZZ_SEED)
@settings(FUZZ_SETTINGS, max_examples=150)
@given(raw=st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                 max_leaves=12).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"query": st.text(max_size=80)}, optional={
        "variables": st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
        "operationName": st.text(max_size=10) | st.integers(),
        "extensions": st.dictionaries(st.text(max_size=15), st.integers() | st.text(max_size=5), max_size=2),
    }).map(lambda v: json.dumps(v).encode()),
))
def test_fuzz_raw_bodies(dynamodb: Any, raw: bytes) -> None:
    """Arbitrary bytes as the body (base64, as API Gateway sends binary): 4xx or 200, never a crash."""
    status, body, text = call_gql(gql_event(claims_=ALICE, base64_body=raw))
    _check(status, body, text, repr(raw))


# ---------------------------------------------------------------- explicit cases


CREATE = "mutation($d: TodoChatSessionInput!){createTodoChatSession(data:$d){id metadata}}"
UPDATE = "mutation($i: Float!, $d: TodoChatSessionInput!){updateTodoChatSession(id:$i, data:$d){id metadata}}"
POST = "mutation($d: TodoChatMessageInput!){createTodoChatMessage(data:$d){id}}"


def _refused(status: int, body: dict[str, Any], raw: str, code: str, *words: str, http: int = 200) -> None:
    assert status == http, (status, raw[:300])
    assert gql_code(body) == code, raw[:300]
    assert_gql_errors_clean(body, raw)
    message = body["errors"][0]["message"]
    for word in words:
        assert word in message, (word, message)


def test_body_over_the_size_limit_is_413_and_writes_nothing(dynamodb: Any) -> None:
    from chatkeep.graphql.server import MAX_BODY_BYTES

    before = snapshot(dynamodb)
    big = json.dumps({"query": CREATE, "variables": {"d": {"todoId": 1, "title": "x" * MAX_BODY_BYTES}}})
    status, body, raw = call_gql(gql_event(claims_=ALICE, raw_body=big))
    _refused(status, body, raw, "BAD_REQUEST", str(MAX_BODY_BYTES), http=413)
    assert diff(before, snapshot(dynamodb))["added"] == []


def test_message_over_32kb_is_refused_with_the_limit(seeded: dict[str, Any], dynamodb: Any) -> None:
    before = snapshot(dynamodb)
    status, body, raw = gql(POST, {"d": {"sessionId": seeded["sessions"][0], "message": "x" * 33_000}},
                            claims_=ALICE)
    _refused(status, body, raw, "BAD_USER_INPUT", "33000 bytes", "32768")
    assert diff(before, snapshot(dynamodb)) == {"changed": [], "removed": [], "added": []}


METADATA_CASES = {
    "too_many_keys": ({f"k{n}": n for n in range(51)}, ("51 keys", "50")),
    "key_too_long": ({"k" * 65: 1}, ("65 characters", "64")),
    "string_too_long": ({"k": "v" * 513}, ("513 characters", "512")),
    "over_8kb": ({f"k{n}": "v" * 500 for n in range(20)}, ("bytes", "8192")),
    "nested_object": ({"k": {"a": 1}}, ("flat",)),
    "list_value": ({"k": [1, 2]}, ("flat",)),
    "not_an_object": ("a string", ("flat JSON object",)),
    "empty_key": ({"": 1}, ("non-empty",)),
    "number_too_big": ({"k": 10**40}, ("41 digits", "38")),
    "float_too_big": ({"k": 1e130}, ("out of range",)),
    "float_of_40_digits": ({"k": 1e40}, ("out of range", "38 digits")),  # one bound with the integers
}


@pytest.mark.parametrize("case", list(METADATA_CASES))
def test_metadata_over_each_limit_is_refused_and_writes_nothing(seeded: dict[str, Any], dynamodb: Any,
                                                                case: str) -> None:
    metadata, words = METADATA_CASES[case]
    before = snapshot(dynamodb)
    status, body, raw = gql(CREATE, {"d": {"todoId": 1, "metadata": metadata}}, claims_=ALICE)
    _refused(status, body, raw, "BAD_USER_INPUT", *words)
    status, body, raw = gql(UPDATE, {"i": seeded["sessions"][0], "d": {"metadata": metadata}}, claims_=ALICE)
    _refused(status, body, raw, "BAD_USER_INPUT", *words)
    assert diff(before, snapshot(dynamodb)) == {"changed": [], "removed": [], "added": []}


def test_metadata_at_each_limit_is_accepted(dynamodb: Any) -> None:
    for metadata in ({f"k{n}": n for n in range(50)}, {"k" * 64: "v" * 512}, {"n": 10**37, "f": 1.5, "b": None}):
        status, body, raw = gql(CREATE, {"d": {"todoId": 1, "metadata": metadata}}, claims_=ALICE)
        assert "errors" not in body, raw[:300]
        assert body["data"]["createTodoChatSession"]["metadata"] == metadata


def test_non_finite_numbers_are_bad_input_not_a_crash(seeded: dict[str, Any]) -> None:
    """1e400 is a valid GraphQL Float literal and valid JSON; Python reads it as infinity."""
    sid = seeded["sessions"][0]
    for query in ("{getOneTodoChatSession(sessionId: 1e400){id}}", "{getTodoChatSessions(todoId: -1e400){totalCount}}",
                  f"mutation{{updateTodoChatSessionCustomBotConfig(data:{{sessionId: {sid}, botId: 1e400}}){{id}}}}"):
        status, body, raw = gql(query, claims_=ALICE)
        _refused(status, body, raw, "BAD_USER_INPUT", "between 1 and 2147483647")
    raw_body = '{"query": ' + json.dumps(CREATE) + ', "variables": {"d": {"todoId": 1, "metadata": {"k": 1e400}}}}'
    status, body, raw = call_gql(gql_event(claims_=ALICE, raw_body=raw_body))
    _refused(status, body, raw, "BAD_USER_INPUT", "finite")


def test_deeply_nested_query_is_refused_before_it_runs(dynamodb: Any) -> None:
    deep = "{getOneTodoChatSession(sessionId: 1){" + "messages{sentBy{" * 40 + "id" + "}}" * 40 + "}}"
    status, body, raw = gql(deep, claims_=ALICE)
    _refused(status, body, raw, "GRAPHQL_VALIDATION_FAILED", "levels deep", "limit", http=400)
    # Deeper than the parser's token budget: refused by the parser, not by recursion.
    deeper = "{a" + "{a" * 5000 + "}" * 5001
    status, body, raw = gql(deeper, claims_=ALICE)
    _refused(status, body, raw, "GRAPHQL_PARSE_FAILED", http=400)


def test_deeply_nested_json_body_is_a_400_not_a_crash(dynamodb: Any) -> None:
    for raw_body in ("[" * 20_000 + "]" * 20_000,
                     '{"query": "{__typename}", "variables": {"x": ' + "[" * 20_000 + "]" * 20_000 + "}}"):
        status, body, raw = call_gql(gql_event(claims_=ALICE, raw_body=raw_body))
        _refused(status, body, raw, "BAD_REQUEST", "nested", http=400)


def test_alias_bomb_is_refused_by_cost(dynamodb: Any) -> None:
    aliases = " ".join(f"a{n}: getTodoChatSessions(todoId: 1){{sessions{{id messages{{id}}}}}}" for n in range(60))
    status, body, raw = gql("{" + aliases + "}", claims_=ALICE)
    _refused(status, body, raw, "GRAPHQL_VALIDATION_FAILED", "cost", http=400)


def test_fragment_bomb_is_refused_without_expanding_it(dynamodb: Any) -> None:
    """f30 spreads f29 twice, ... : 2^30 fields once expanded; costed linearly, refused at once."""
    frags = ["fragment f0 on TodoChatSession { id title }"]
    frags += [f"fragment f{n} on TodoChatSession {{ ...f{n - 1} a{n}: messages(limit: 2) {{ id }} ...f{n - 1} }}"
              for n in range(1, 31)]
    query = "{getOneTodoChatSession(sessionId: 1){...f30}} " + " ".join(frags)
    status, body, raw = gql(query, claims_=ALICE)
    _refused(status, body, raw, "GRAPHQL_VALIDATION_FAILED", "cost", http=400)


def test_fragment_cycle_is_refused(dynamodb: Any) -> None:
    query = ("{getOneTodoChatSession(sessionId: 1){...a}} fragment a on TodoChatSession {...b} "
             "fragment b on TodoChatSession {...a}")
    status, body, raw = gql(query, claims_=ALICE)
    _refused(status, body, raw, "GRAPHQL_VALIDATION_FAILED", "within itself", http=400)


def test_batched_operation_arrays_are_refused(dynamodb: Any) -> None:
    batch = json.dumps([{"query": "{__typename}"}, {"query": CREATE, "variables": {"d": {"todoId": 1}}}])
    before = snapshot(dynamodb)
    status, body, raw = call_gql(gql_event(claims_=ALICE, raw_body=batch))
    _refused(status, body, raw, "BAD_REQUEST", "one operation per request", http=400)
    assert diff(before, snapshot(dynamodb))["added"] == []


def test_introspection_is_off_by_default(dynamodb: Any) -> None:
    for query in ("{__schema{types{name}}}", '{__type(name: "TodoChatSession"){fields{name}}}',
                  "query{a: __schema{queryType{name}}}"):
        status, body, raw = gql(query, claims_=ALICE)
        _refused(status, body, raw, "GRAPHQL_VALIDATION_FAILED", "introspection is disabled", http=400)
    status, body, _ = gql("{__typename}", claims_=ALICE)  # __typename is not introspection
    assert body == {"data": {"__typename": "Query"}}


def test_introspection_when_enabled(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatkeep import settings as chatkeep_settings

    monkeypatch.setenv("ENABLE_INTROSPECTION", "true")
    chatkeep_settings.reset()
    try:
        status, body, _ = gql("{__schema{queryType{name}}}", claims_=ALICE)
        assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    finally:
        monkeypatch.delenv("ENABLE_INTROSPECTION")
        chatkeep_settings.reset()


@pytest.mark.parametrize("payload", [
    b'{"query": "{__typename}\xff"}',  # not UTF-8
    b'{"query": "mutation{createTodoChatSession(data:{todoId: 1, title: \\"\xc3\\"}){id}}"}',  # truncated sequence
    b"\xef\xbb\xbf\xfe\xff",
])
def test_invalid_utf8_base64_body_is_a_400(dynamodb: Any, payload: bytes) -> None:
    before = snapshot(dynamodb)
    status, body, raw = call_gql(gql_event(claims_=ALICE, base64_body=payload))
    _refused(status, body, raw, "BAD_REQUEST", "UTF-8", http=400)
    assert diff(before, snapshot(dynamodb))["added"] == []


def test_invalid_base64_body_is_a_400(dynamodb: Any) -> None:
    event = gql_event(claims_=ALICE, raw_body="x")
    event.update(body="!!!not base64", isBase64Encoded=True)
    status, body, raw = call_gql(event)
    _refused(status, body, raw, "BAD_REQUEST", http=400)


@pytest.mark.parametrize("raw_body", [
    '{"query": "{__typename} #\\ud800"}',  # in the document
    '{"query": ' + json.dumps(CREATE) + ', "variables": {"d": {"todoId": 1, "title": "a\\udfffb"}}}',
    '{"query": ' + json.dumps(CREATE) + ', "variables": {"d": {"todoId": 1, "metadata": {"k\\ud800": "v"}}}}',
])
def test_lone_surrogates_are_a_400_and_write_nothing(dynamodb: Any, raw_body: str) -> None:
    before = snapshot(dynamodb)
    status, body, raw = call_gql(gql_event(claims_=ALICE, raw_body=raw_body))
    _refused(status, body, raw, "BAD_REQUEST", "surrogate", http=400)
    assert diff(before, snapshot(dynamodb))["added"] == []


def test_graphql_string_escape_of_a_lone_surrogate_is_refused(dynamodb: Any) -> None:
    status, body, raw = gql('mutation{createTodoChatSession(data:{todoId: 1, title: "\\ud800"}){id}}', claims_=ALICE)
    assert status in (200, 400) and gql_code(body) in ("GRAPHQL_PARSE_FAILED", "BAD_USER_INPUT"), raw
    assert_gql_errors_clean(body, raw)


@pytest.mark.parametrize("ids,code,http", [
    ("[2147483648]", "GRAPHQL_VALIDATION_FAILED", 400),
    ("[-2147483649]", "GRAPHQL_VALIDATION_FAILED", 400),
    ("[99999999999999999999999]", "GRAPHQL_VALIDATION_FAILED", 400),
    ("[0]", "BAD_USER_INPUT", 200),
    ("[-5]", "BAD_USER_INPUT", 200),
    ("[1.5]", "GRAPHQL_VALIDATION_FAILED", 400),
])
def test_delete_many_ids_out_of_range(seeded: dict[str, Any], dynamodb: Any, ids: str, code: str, http: int) -> None:
    before = snapshot(dynamodb)
    status, body, raw = gql(f"mutation{{deleteManyTodoChatSession(ids: {ids})}}", claims_=ALICE)
    _refused(status, body, raw, code, http=http)
    # The same through variables: a request error (BAD_USER_INPUT), not a crash.
    status, body, raw = gql("mutation($i: [Int!]!){deleteManyTodoChatSession(ids:$i)}", {"i": json.loads(ids)},
                            claims_=ALICE)
    _refused(status, body, raw, "BAD_USER_INPUT")
    assert diff(before, snapshot(dynamodb)) == {"changed": [], "removed": [], "added": []}


def test_delete_many_over_100_ids(dynamodb: Any) -> None:
    status, body, raw = gql("mutation($i: [Int!]!){deleteManyTodoChatSession(ids:$i)}", {"i": list(range(1, 102))},
                            claims_=ALICE)
    _refused(status, body, raw, "BAD_USER_INPUT", "100")


def test_unknown_persisted_query_hash(dynamodb: Any) -> None:
    unknown = hashlib.sha256(b"never sent").hexdigest()
    for digest in (unknown, "0" * 64, "not-a-hash", ""):
        event = gql_event(claims_=ALICE, raw_body=json.dumps(
            {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}))
        status, body, raw = call_gql(event)
        # Apollo's protocol: 200 with PersistedQueryNotFound, so the client retries with the query text.
        _refused(status, body, raw, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
    status, body, raw = call_gql(gql_event(claims_=ALICE, raw_body=json.dumps(
        {"query": "{__typename}", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": unknown}}})))
    _refused(status, body, raw, "BAD_REQUEST", "does not match", http=400)
    status, body, raw = call_gql(gql_event(claims_=ALICE, raw_body=json.dumps(
        {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": unknown}}})))
    _refused(status, body, raw, "PERSISTED_QUERY_NOT_SUPPORTED", "version", http=400)


def test_malformed_envelopes(dynamodb: Any) -> None:
    cases = {
        "": ("BAD_REQUEST", 400), "null": ("BAD_REQUEST", 400), '"query"': ("BAD_REQUEST", 400),
        "{}": ("BAD_REQUEST", 400), '{"query": 5}': ("BAD_REQUEST", 400),
        '{"query": "{__typename}", "variables": []}': ("BAD_REQUEST", 400),
        '{"query": "{__typename}", "operationName": 7}': ("BAD_REQUEST", 400),
        '{"query": "{"}': ("GRAPHQL_PARSE_FAILED", 400),
        '{"query": "subscription{x}"}': ("GRAPHQL_VALIDATION_FAILED", 400),
        '{"query": "{nope}"}': ("GRAPHQL_VALIDATION_FAILED", 400),
        '{"query": "query A{__typename} query B{__typename}"}': ("BAD_USER_INPUT", 200),
    }
    for raw_body, (code, http) in cases.items():
        status, body, raw = call_gql(gql_event(claims_=ALICE, raw_body=raw_body))
        _refused(status, body, raw, code, http=http)
