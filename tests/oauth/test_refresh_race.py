"""A revoked refresh-token family never gains a live token, whatever the order of refresh and revocation.

The issuer is paused at each point of a refresh (claimed and signed;
rows recorded; checked, not committed) while the family is revoked from
another connection, on real SQLite and PostgreSQL with real signed tokens.
Each test pins one order; the invariant is the same: either the refresh
is refused, or the token it produced is on the deny-list and the refresh
token it produced is revoked.
"""

from __future__ import annotations

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
from mcp_acl.store.token_ledger import is_revoked
from tests.oauth.issue_races import revoked_after_the_check, revoked_while_recorded

RESOURCE = "http://127.0.0.1:8000/mcp"


@pytest.fixture
def claimed(engine):
    """A family f1 of alice via app whose refresh token was just claimed (used), and an issuer."""
    admin = PolicyAdmin(engine)
    admin.add_user("alice")
    admin.add_client("app")
    store = RefreshTokenStore(engine)
    first = store.issue(family_id="f1", client_id="app", user_name="alice", scope="mcp", resource=RESOURCE)
    assert store.use(first, "app") is not None
    options = ServerOptions(issuer="http://127.0.0.1:8000", resource=RESOURCE, scope="mcp")
    return TokenIssuer(SigningKeys(engine), options, store)


def refresh(issuer: TokenIssuer) -> dict:
    return issuer.issue(client=SimpleNamespace(client_id="app"), user_name="alice", scope="mcp", resource=RESOURCE, family_id="f1")


def live_refresh_tokens(engine) -> list:
    rt = t.oauth_refresh_tokens
    with engine.connect() as conn:
        return list(conn.execute(select(rt.c.token_hash).where(rt.c.family_id == "f1", rt.c.revoked_at.is_(None), rt.c.used_at.is_(None))))


def assert_no_live_token(engine, outcome: dict | None) -> None:
    assert live_refresh_tokens(engine) == []
    if outcome is not None:
        with engine.connect() as conn:
            assert is_revoked(conn, issued_token(outcome["access_token"]).jti)


def test_a_refresh_after_the_family_was_revoked_is_refused(engine, claimed):
    RefreshTokenStore(engine).revoke_family("f1")
    with pytest.raises(InvalidGrantError):
        refresh(claimed)
    assert_no_live_token(engine, None)


def test_revoked_between_the_claim_and_storing_the_next_token_is_refused(engine, claimed):
    # The refresh token was claimed (used) and the access token signed; then the family goes.
    claimed.pause = lambda stage: stage == "signed" and RefreshTokenStore(engine).revoke_family("f1")
    with pytest.raises(InvalidGrantError, match="revoked"):
        refresh(claimed)
    assert_no_live_token(engine, None)
    with engine.connect() as conn:
        assert conn.execute(select(t.access_tokens)).first() is None  # rolled back: never recorded


def test_revoked_while_the_next_token_is_being_stored(engine, claimed):
    revoke = partial(RefreshTokenStore(engine).revoke_family, "f1")
    outcome = revoked_while_recorded(engine, claimed, lambda: refresh(claimed), revoke)
    # Refused, or (SQLite) issued and swept by the revocation that ran after its commit.
    assert_no_live_token(engine, outcome)


def test_revoked_after_the_check_waits_for_the_issue_and_then_sweeps_it(engine, claimed):
    revoke = partial(RefreshTokenStore(engine).revoke_family, "f1")
    # The check passed before the revocation: the token is issued, and revoked by the sweep that waited for it.
    assert_no_live_token(engine, revoked_after_the_check(engine, claimed, lambda: refresh(claimed), revoke))
