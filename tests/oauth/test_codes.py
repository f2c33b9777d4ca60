"""Authorization codes in the store: single use, bound, replay revokes the family."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from mcp_acl.oauth._digest import digest, new_token
from mcp_acl.oauth.codes import CodeStore
from mcp_acl.oauth.refresh_tokens import RefreshTokenStore
from mcp_acl.store import tables as t


@pytest.fixture
def stores(principals):
    refresh = RefreshTokenStore(principals)
    return CodeStore(principals, refresh), refresh


def _save(codes: CodeStore) -> str:
    code = new_token()
    codes.save(code, client_id="app", user_name="alice", redirect_uri="http://127.0.0.1:1/cb", scope="mcp",
               resource="http://127.0.0.1:8000/mcp", code_challenge="c" * 43, code_challenge_method="S256")
    return code


def test_a_code_is_stored_only_as_its_digest(engine, stores):
    code = _save(stores[0])
    with engine.connect() as conn:
        assert conn.execute(select(t.oauth_codes.c.code_hash)).scalars().all() == [digest(code)]


def test_a_code_is_consumed_once(stores):
    codes, _ = stores
    code = _save(codes)
    found = codes.consume(code, "app")
    assert found is not None and found.user_name == "alice" and found.get_scope() == "mcp"
    assert codes.consume(code, "app") is None


def test_replaying_a_code_revokes_the_refresh_tokens_it_issued(stores):
    codes, refresh = stores
    code = _save(codes)
    found = codes.consume(code, "app")
    token = refresh.issue(family_id=found.family_id, client_id="app", user_name="alice", scope="mcp", resource=found.resource)
    assert codes.consume(code, "app") is None
    assert refresh.use(token, "app") is None


def test_a_code_is_refused_to_another_client_and_burnt(stores):
    codes, _ = stores
    code = _save(codes)
    assert codes.consume(code, "other") is None
    assert codes.consume(code, "app") is None


def test_an_expired_code_is_refused(engine, stores, expire):
    codes, _ = stores
    code = _save(codes)
    expire(engine, t.oauth_codes)
    assert codes.consume(code, "app") is None


def test_two_concurrent_exchanges_cannot_both_win(stores):
    codes, _ = stores
    code = _save(codes)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(codes.consume(code, "app"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1


def test_codes_long_expired_are_purged_as_new_ones_come(engine, stores, expire):
    codes, _ = stores
    _save(codes)
    expire(engine, t.oauth_codes, timedelta(days=2))
    fresh = _save(codes)
    with engine.connect() as conn:
        assert conn.execute(select(t.oauth_codes.c.code_hash)).scalars().all() == [digest(fresh)]
