"""The sessions table: binding a session to its identity, ending it, refusing what follows."""

from __future__ import annotations

import pytest

from mcp_acl.gateway.sessions import CLOSED, KILLED, SessionRefused, SessionStore
from mcp_acl.policy import Identity

ALICE = Identity("alice", client_id="mcp-acl-cli", issuer="http://127.0.0.1:8000")
BOB = Identity("bob", client_id="mcp-acl-cli", issuer="http://127.0.0.1:8000")


def test_first_request_records_the_session_with_its_identity(engine):
    store = SessionStore(engine)
    store.admit("s1", ALICE, "http")
    row = store.get("s1")
    assert (row.issuer, row.subject, row.client_id, row.transport) == ("http://127.0.0.1:8000", "alice", "mcp-acl-cli", "http")
    assert row.ended_at is None


def test_request_from_another_identity_is_refused(engine):
    store = SessionStore(engine)
    store.admit("s1", ALICE, "http")
    with pytest.raises(SessionRefused, match="belongs to another identity"):
        store.admit("s1", BOB, "http")


def test_same_user_through_another_client_is_refused(engine):
    store = SessionStore(engine)
    store.admit("s1", ALICE, "http")
    with pytest.raises(SessionRefused):
        store.admit("s1", Identity("alice", client_id="ollama-agent", issuer=ALICE.issuer), "http")


def test_killed_session_refuses_its_next_request(engine):
    store = SessionStore(engine)
    store.admit("s1", ALICE, "http")
    assert store.end("s1", KILLED)
    with pytest.raises(SessionRefused, match="ended by an administrator"):
        store.admit("s1", ALICE, "http")


def test_ending_twice_keeps_the_first_reason(engine):
    store = SessionStore(engine)
    store.open("s1", ALICE, "stdio")
    assert store.end("s1", KILLED)
    assert not store.end("s1", CLOSED)
    assert store.get("s1").end_reason == KILLED


def test_live_lists_only_sessions_not_ended(engine):
    store = SessionStore(engine)
    store.open("s1", ALICE, "http")
    store.open("s2", BOB, "stdio")
    store.end("s1", CLOSED)
    assert [r.id for r in store.live()] == ["s2"]


def test_ended_among_names_killed_and_closed_sessions(engine):
    store = SessionStore(engine)
    for sid in ("a", "b", "c"):
        store.open(sid, ALICE, "http")
    store.end("a", KILLED)
    store.end("b", CLOSED)
    assert store.ended_among(["a", "b", "c", "missing"]) == {"a": KILLED, "b": CLOSED}


def test_opening_an_existing_session_returns_the_stored_owner(engine):
    store = SessionStore(engine)
    store.open("s1", ALICE, "http")
    assert store.open("s1", BOB, "http").subject == "alice"
