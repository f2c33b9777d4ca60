"""A revoked token never gains a live narrowed token, whatever the order of exchange and revocation.

The issuer is paused at each point of issuing a token exchanged from a
parent (signed; recorded; checked, not committed) while the parent is
revoked by its jti from another connection, on real SQLite and PostgreSQL.
Either the exchange is refused, or the token it produced is on the
deny-list. And the sweep follows the ledger's links down every generation.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from types import SimpleNamespace

import pytest
from authlib.oauth2.rfc6749 import InvalidGrantError
from sqlalchemy import select

from mcp_acl.auth.keys import SigningKeys
from mcp_acl.auth.tokens import issued_token
from mcp_acl.oauth.options import ServerOptions
from mcp_acl.oauth.refresh_tokens import RefreshTokenStore
from mcp_acl.oauth.tokens import TokenIssuer
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from mcp_acl.store.token_ledger import (
    IssuedToken,
    insert_issued,
    is_revoked,
    revoke_jti,
    utcnow,
)
from tests.oauth.issue_races import revoked_after_the_check, revoked_while_recorded
from tests.oauth.test_refresh_race import RESOURCE


def _record(engine, jti: str, parent: str | None = None, ttl: timedelta = timedelta(hours=1)) -> None:
    now = utcnow()
    with engine.begin() as conn:
        insert_issued(conn, IssuedToken(jti, "alice", "app", now, now + ttl), parent_jti=parent)


@pytest.fixture
def issuer(engine):
    """Alice via app holds the recorded token `parent`; an issuer to exchange it."""
    admin = PolicyAdmin(engine)
    admin.add_user("alice")
    admin.add_client("app")
    _record(engine, "parent")
    options = ServerOptions(issuer="http://127.0.0.1:8000", resource=RESOURCE, scope="mcp")
    return TokenIssuer(SigningKeys(engine), options, RefreshTokenStore(engine))


def exchange(issuer: TokenIssuer) -> dict:
    return issuer.issue(
        client=SimpleNamespace(client_id="app"), user_name="alice", scope="mcp", resource=RESOURCE, family_id=None,
        refresh=False, parent_jti="parent",
    )


def assert_no_live_child(engine, outcome: dict | None) -> None:
    with engine.connect() as conn:
        assert is_revoked(conn, "parent")
        if outcome is None:
            # Rolled back: only the parent is on record.
            assert conn.execute(select(t.access_tokens.c.jti)).scalars().all() == ["parent"]
        else:
            assert is_revoked(conn, issued_token(outcome["access_token"]).jti)


def test_revoked_between_the_check_at_the_endpoint_and_storing_the_token_is_refused(engine, issuer):
    # The exchange endpoint found the parent live and signed the token; then the parent goes.
    issuer.pause = lambda stage: stage == "signed" and revoke_jti(engine, "parent", "ops")
    with pytest.raises(InvalidGrantError, match="exchanged from was revoked"):
        exchange(issuer)
    assert_no_live_child(engine, None)


def test_revoked_while_the_token_is_being_stored(engine, issuer):
    revoke = partial(revoke_jti, engine, "parent", "ops")
    outcome = revoked_while_recorded(engine, issuer, lambda: exchange(issuer), revoke)
    # Refused, or (SQLite) issued and swept by the revocation that ran after its commit.
    assert_no_live_child(engine, outcome)


def test_revoked_after_the_check_waits_for_the_exchange_and_then_sweeps_it(engine, issuer):
    # The revocation waits on the parent's row the issuer reads FOR SHARE, then sweeps what it issued.
    revoke = partial(revoke_jti, engine, "parent", "ops")
    assert_no_live_child(engine, revoked_after_the_check(engine, issuer, lambda: exchange(issuer), revoke))


def test_the_sweep_follows_every_generation_and_nothing_else(engine, issuer):
    _record(engine, "child", parent="parent")
    _record(engine, "grandchild", parent="child")
    _record(engine, "expired-child", parent="parent", ttl=timedelta(seconds=-1))
    _record(engine, "unrelated")
    done = revoke_jti(engine, "parent", "ops")
    assert (done.known, done.already, done.exchanged) == (True, False, 2)  # the expired one is not counted
    with engine.connect() as conn:
        assert [is_revoked(conn, jti) for jti in ("parent", "child", "grandchild", "unrelated")] == [True, True, True, False]
    # Again: nothing new to revoke.
    assert (revoke_jti(engine, "parent").already, revoke_jti(engine, "parent").exchanged) == (True, 0)


def test_a_parent_the_ledger_does_not_hold_is_refused(engine, issuer):
    # Pruned or never recorded: with no row to say it is live, nothing is issued from it.
    with engine.begin() as conn:
        conn.execute(t.access_tokens.delete().where(t.access_tokens.c.jti == "parent"))
    with pytest.raises(InvalidGrantError, match="exchanged from was revoked or is gone"):
        exchange(issuer)
    with engine.connect() as conn:
        assert conn.execute(select(t.access_tokens.c.jti)).scalars().all() == []
