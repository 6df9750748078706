"""Live updates never cross an owner or a workspace (DESIGN section 9): the isolation matrix of subscriptions, over
the local WebSocket API emulator with RealtimeFunction's declared handler and the stream processor's fan-out.

Subscribing to what the caller cannot read is an `error` with NOT_FOUND, the same answer whether the session exists
or not; and at delivery every event is checked again against each subscriber, so even a subscription record that
names someone else's topic (written behind the API's back) receives nothing."""

from __future__ import annotations

from typing import Any

import pytest
from chatkeep.models import Subscription
from chatkeep.realtime.events import SESSION, TODO, topic
from chatkeep.repository.connections import ConnectionStore

from tests.integration.live_support import SESSION_QUERY, TODO_QUERY, LiveWorld, data_of

TODO_ID = 4242
CALLERS = {
    "the owner": ("alice", "ws1", False),
    "another user of the workspace": ("mallory", "ws1", False),
    "a user of another workspace": ("alice", "ws2", False),
    "a service principal of the workspace": ("bot", "ws1", True),
    "a service principal of another workspace": ("bot", "ws2", True),
}
MAY_READ = {"the owner", "a service principal of the workspace"}


def token_of(live: LiveWorld, caller: str) -> str:
    sub, ws, service = CALLERS[caller]
    return live.token(sub, ws, scope="chatkeep/service" if service else None)


def subscribe_answer(live: LiveWorld, caller: str, query: str, variables: dict[str, Any]) -> str:
    """'subscribed', or the error code the subscribe was answered with."""
    with live.connect(token_of(live, caller)) as client:
        client.subscribe("op", query, variables)

        def answered() -> str | None:
            try:
                message = client.recv(timeout=0.02)
            except TimeoutError:
                live_items = [s for s in live.subscription_items() if s.get("state") == "live"]
                return "subscribed" if live_items else None
            assert message["type"] == "error", message
            return message["payload"][0]["extensions"]["code"]

        return live.wait_for(answered, "an error or a live subscription")


@pytest.mark.parametrize("caller", CALLERS, ids=list(CALLERS))
def test_given_alices_session_when_each_caller_subscribes_then_only_those_who_may_read_it_are_subscribed(
        live, caller):
    sid = live.service.create_session(live.principal("alice"), TODO_ID, title="Private").id
    answer = subscribe_answer(live, caller, SESSION_QUERY, {"s": sid})
    assert answer == ("subscribed" if caller in MAY_READ else "NOT_FOUND")


@pytest.mark.parametrize("caller", CALLERS, ids=list(CALLERS))
def test_given_alices_todo_when_each_caller_subscribes_then_only_those_who_may_read_it_are_subscribed(live, caller):
    live.service.create_session(live.principal("alice"), TODO_ID, title="Private")
    answer = subscribe_answer(live, caller, TODO_QUERY, {"t": TODO_ID})
    # A todo of another workspace is a todo never used there (todos need not exist before their first session).
    never_used_there = CALLERS[caller][1] != "ws1"
    assert answer == ("subscribed" if caller in MAY_READ or never_used_there else "NOT_FOUND")


def test_given_a_session_that_does_not_exist_when_subscribing_then_not_found_as_for_someone_elses(live):
    assert subscribe_answer(live, "the owner", SESSION_QUERY, {"s": 123456789}) == "NOT_FOUND"


def test_given_each_caller_subscribed_where_allowed_when_alice_posts_then_only_allowed_callers_get_events(live):
    alice = live.principal("alice")
    sid = live.service.create_session(alice, TODO_ID, title="Private").id
    clients = {}
    stack = []
    for caller in CALLERS:
        manager = live.connect(token_of(live, caller))
        client = manager.__enter__()
        stack.append(manager)
        client.subscribe("s", SESSION_QUERY, {"s": sid})
        client.subscribe("t", TODO_QUERY, {"t": TODO_ID})
        clients[caller] = client
    try:
        live.wait_for(lambda: len([s for s in live.subscription_items() if s.get("state") == "live"]) >= 2 + 2 + 2,
                      "the allowed subscriptions (and the never-used todo of ws2) are live")
        live.service.post_message(alice, sid, content="the launch code is swordfish", role="user")
        live.settle()
        for caller, client in clients.items():
            payloads = [m for m in client.ping_barrier() if m["type"] == "next"]
            text = str(payloads)
            if caller in MAY_READ:
                kinds = {(m["id"], next(iter(data_of(m).values()))["kind"]) for m in payloads}
                assert ("s", "MESSAGE_CREATED") in kinds and ("t", "SESSION_UPDATED") in kinds, caller
            else:
                assert payloads == [] and "swordfish" not in text, caller
    finally:
        for manager in stack:
            manager.__exit__(None, None, None)


def test_given_a_never_used_todo_followed_by_alice_when_mallory_claims_it_then_alice_sees_none_of_mallorys(live):
    with live.connect(token_of(live, "the owner")) as alice:
        alice.subscribe("t", TODO_QUERY, {"t": 777})
        live.subscribed("t")
        live.service.create_session(live.principal("mallory"), 777, title="Mallory's secret plan")
        live.settle()
        assert alice.events() == []


def test_given_a_subscription_record_forged_on_another_owners_topic_when_an_event_comes_then_it_is_not_delivered(
        live):
    alice = live.principal("alice")
    sid = live.service.create_session(alice, TODO_ID, title="Private").id
    with live.connect(token_of(live, "another user of the workspace")) as mallory:
        (connection_id,) = live.api.connection_ids()
        store = ConnectionStore()
        connection = store.get(connection_id)
        assert connection is not None
        for op, where in (("s", topic(SESSION, "ws1", sid)), ("t", topic(TODO, "ws1", TODO_ID))):
            query = SESSION_QUERY if op == "s" else TODO_QUERY
            store.subscribe(Subscription(connection_id, op, where, query, {"s": sid, "t": TODO_ID}, None,
                                         "mallory", False, connection.token_expires_at, connection.expires_at), at=1)
        live.service.update_session(alice, sid, title="Renamed in private")
        live.service.close_session(alice, sid)
        live.settle()
        assert mallory.events() == []
        assert live.processors[-1].stats.live_events > 0
