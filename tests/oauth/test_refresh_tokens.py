"""Refresh-token families in the store: rotation, replay detection, revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mcp_acl.oauth._digest import digest
from mcp_acl.oauth.refresh_tokens import RefreshTokenStore
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t


@pytest.fixture
def store(principals) -> RefreshTokenStore:
    return RefreshTokenStore(principals)


def _issue(store: RefreshTokenStore, family: str = "f1") -> str:
    return store.issue(family_id=family, client_id="app", user_name="alice", scope="mcp", resource="http://r/mcp")


def test_a_token_is_stored_only_as_its_digest(engine, store):
    token = _issue(store)
    with engine.connect() as conn:
        assert conn.execute(select(t.oauth_refresh_tokens.c.token_hash)).scalars().all() == [digest(token)]


def test_a_token_is_used_once(store):
    token = _issue(store)
    used = store.use(token, "app")
    assert used is not None and used.family_id == "f1" and used.user_name == "alice"
    assert store.use(token, "app") is None


def test_reusing_a_used_token_revokes_its_whole_family(store):
    first = _issue(store)
    store.use(first, "app")
    second = _issue(store)  # the rotated successor, same family
    unrelated = _issue(store, "f2")
    assert store.use(first, "app") is None
    assert store.use(second, "app") is None
    assert store.family_revoked("f1")
    assert store.use(unrelated, "app") is not None


def test_another_clients_use_revokes_the_family(store):
    token = _issue(store)
    assert store.use(token, "other") is None
    assert store.use(token, "app") is None


def test_an_expired_token_is_refused(engine, store, expire):
    token = _issue(store)
    expire(engine, t.oauth_refresh_tokens)
    assert store.use(token, "app") is None


def test_revoking_a_family_ends_its_live_tokens(store):
    token = _issue(store)
    assert store.find(token) is not None
    store.revoke_family("f1")
    assert store.find(token) is None and store.use(token, "app") is None


def test_removing_the_user_removes_the_tokens(engine, store):
    _issue(store)
    PolicyAdmin(engine).remove_user("alice")
    with engine.connect() as conn:
        assert conn.execute(select(t.oauth_refresh_tokens)).first() is None


def test_tokens_long_expired_are_purged_as_new_ones_come(engine, store, expire):
    _issue(store)
    expire(engine, t.oauth_refresh_tokens, timedelta(days=2))
    fresh = _issue(store)
    with engine.connect() as conn:
        assert conn.execute(select(t.oauth_refresh_tokens.c.token_hash)).scalars().all() == [digest(fresh)]
