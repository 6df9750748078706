"""Session lifecycle in moto: expiry on inactivity, close, retention past which a session is gone even
while DynamoDB's lazy TTL has not deleted it yet (lists, counts and reads agree)."""

import pytest
from chatkeep.errors import NotFound, SessionClosed, SessionExpired
from chatkeep.models import SessionStatus
from conftest import make_principal

ALICE = make_principal("alice")
DAY = 86400


def test_given_activity_when_messages_posted_then_expiry_moves_with_each_one(chat_service, clock_offset):
    session = chat_service.create_session(ALICE, 1, idle_timeout=60)
    clock_offset.advance(50)
    _, after_post = chat_service.post_message(ALICE, session.id, content="still here")
    clock_offset.advance(50)  # 100 s after creation, 50 s after the last activity
    view = chat_service.get_session(ALICE, session.id)
    assert view.session.status(clock_offset.now()) is SessionStatus.ACTIVE
    assert after_post.expires_at_epoch > session.expires_at_epoch
    chat_service.post_message(ALICE, session.id, content="and again")


def test_given_idle_session_when_posting_then_expired_and_history_still_readable(chat_service, clock_offset):
    session = chat_service.create_session(ALICE, 1, idle_timeout=60)
    chat_service.post_message(ALICE, session.id, content="first")
    clock_offset.advance(61)
    with pytest.raises(SessionExpired):
        chat_service.post_message(ALICE, session.id, content="too late")
    view = chat_service.get_session(ALICE, session.id)
    assert view.session.status(clock_offset.now()) is SessionStatus.EXPIRED
    assert [m.content for m in view.messages] == ["first"]


def test_given_closed_session_when_posting_then_closed_and_closing_again_is_harmless(chat_service):
    session = chat_service.create_session(ALICE, 1)
    closed = chat_service.close_session(ALICE, session.id)
    assert closed.closed_at
    with pytest.raises(SessionClosed):
        chat_service.post_message(ALICE, session.id, content="x")
    assert chat_service.close_session(ALICE, session.id).closed_at == closed.closed_at


def test_given_expired_session_when_closed_then_its_retention_clock_is_kept(chat_service, clock_offset):
    session = chat_service.create_session(ALICE, 1, idle_timeout=60)
    clock_offset.advance(3600)
    closed = chat_service.close_session(ALICE, session.id)
    assert closed.status(clock_offset.now()) is SessionStatus.CLOSED
    assert closed.purge_at == session.purge_at


def test_given_session_past_retention_but_not_yet_ttl_deleted_then_gone_everywhere(chat_service, clock_offset):
    keep = chat_service.create_session(ALICE, 7, idle_timeout=30 * DAY)
    stale = chat_service.create_session(ALICE, 7, idle_timeout=60)
    clock_offset.advance(chat_service.settings.retention_days * DAY + 120)  # TTL would have fired; moto never does
    page = chat_service.list_sessions(ALICE, 7, limit=10)
    assert [s.id for s in page.sessions] == [keep.id] and page.total_count == 1
    for call in (lambda: chat_service.get_session(ALICE, stale.id),
                 lambda: chat_service.post_message(ALICE, stale.id, content="x"),
                 lambda: chat_service.delete_session(ALICE, stale.id),
                 lambda: chat_service.close_session(ALICE, stale.id)):
        with pytest.raises(NotFound):
            call()
    assert chat_service.delete_sessions(ALICE, [stale.id, keep.id]) == 1


def test_given_many_sessions_when_paging_with_offset_then_total_count_agrees_and_loop_ends(chat_service):
    created = [chat_service.create_session(ALICE, 9, title=f"s{i}") for i in range(23)]
    seen, offset = [], 0
    first = chat_service.list_sessions(ALICE, 9, limit=10, offset=0)
    total = first.total_count
    seen += first.sessions
    while len(seen) < total:
        offset += 10
        seen += chat_service.list_sessions(ALICE, 9, limit=10, offset=offset).sessions
    assert total == 23 and {s.id for s in seen} == {s.id for s in created}


def test_given_recent_activity_then_listed_first(chat_service, clock_offset):
    older = chat_service.create_session(ALICE, 3, title="older")
    clock_offset.advance(5)
    newer = chat_service.create_session(ALICE, 3, title="newer")
    assert [s.id for s in chat_service.list_sessions(ALICE, 3).sessions] == [newer.id, older.id]
    clock_offset.advance(5)
    chat_service.post_message(ALICE, older.id, content="bump")
    assert [s.id for s in chat_service.list_sessions(ALICE, 3).sessions] == [older.id, newer.id]


def test_given_status_filter_and_cursor_then_pages_and_counts_match(chat_service, clock_offset):
    sessions = [chat_service.create_session(ALICE, 4, idle_timeout=60) for _ in range(5)]
    chat_service.close_session(ALICE, sessions[0].id)
    clock_offset.advance(1)
    live = [chat_service.create_session(ALICE, 4, idle_timeout=3600) for _ in range(3)]
    clock_offset.advance(120)  # the first five went idle; one of them is closed
    assert chat_service.list_sessions(ALICE, 4, status="closed").total_count == 1
    assert chat_service.list_sessions(ALICE, 4, status="expired").total_count == 4
    page = chat_service.list_sessions(ALICE, 4, status="active", limit=2)
    assert page.total_count == 3 and page.has_more and page.next_cursor
    rest = chat_service.list_sessions(ALICE, 4, status="active", limit=2, cursor=page.next_cursor)
    assert {s.id for s in page.sessions + rest.sessions} == {s.id for s in live} and not rest.has_more
