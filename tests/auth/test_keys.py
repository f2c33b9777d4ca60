"""The embedded issuer's signing keys, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from joserfc import jws
from joserfc.jwk import RSAKey
from sqlalchemy import select

from mcp_acl.auth import SigningError, SigningKeys
from mcp_acl.auth.keys import describe_duration
from mcp_acl.store import tables as t
from tests.auth.support import Clock

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


def _claims(clock: Clock, ttl: float = 600) -> dict:
    return {"sub": "alice", "exp": int(clock() + ttl)}


def test_ensure_active_creates_one_key_and_keeps_it(engine):
    keys = SigningKeys(engine)
    kid = keys.ensure_active()
    assert keys.ensure_active() == kid
    assert [k.kid for k in keys.inventory()] == [kid]


def test_kid_is_the_rfc7638_thumbprint_of_the_public_key(engine):
    keys = SigningKeys(engine)
    kid = keys.ensure_active()
    [public] = keys.jwks()["keys"]
    assert RSAKey.import_key(public).thumbprint() == kid


def test_jwks_holds_public_keys_only(engine):
    keys = SigningKeys(engine)
    keys.ensure_active()
    [public] = keys.jwks()["keys"]
    assert PRIVATE_MEMBERS.isdisjoint(public)
    assert (public["kty"], public["use"], public["alg"]) == ("RSA", "sig", "RS256")


def test_sign_sets_alg_kid_and_typ_and_verifies_with_the_published_key(engine):
    clock = Clock()
    keys = SigningKeys(engine, clock=clock)
    token = keys.sign(_claims(clock), typ="at+jwt")
    [public] = keys.jwks()["keys"]
    obj = jws.deserialize_compact(token, RSAKey.import_key(public), algorithms=["RS256"])
    assert obj.headers() == {"alg": "RS256", "kid": public["kid"], "typ": "at+jwt"}
    assert json.loads(obj.payload)["sub"] == "alice"


def test_sign_creates_the_first_key_when_there_is_none(engine):
    clock = Clock()
    keys = SigningKeys(engine, clock=clock)
    keys.sign(_claims(clock))
    assert [k.state for k in keys.inventory()] == ["active"]


def test_sign_refuses_claims_without_exp(engine):
    with pytest.raises(SigningError, match="exp"):
        SigningKeys(engine).sign({"sub": "alice"})


def test_sign_refuses_a_lifetime_beyond_the_rotation_window(engine):
    clock = Clock()
    keys = SigningKeys(engine, clock=clock, max_token_ttl=timedelta(hours=1))
    with pytest.raises(SigningError, match="outlives"):
        keys.sign(_claims(clock, ttl=2 * 3600))


def test_rotate_makes_a_new_active_key_and_keeps_the_old_one_published(engine):
    clock = Clock()
    keys = SigningKeys(engine, clock=clock)
    old = keys.ensure_active()
    new = keys.rotate(timedelta(days=2))
    assert new != old
    assert keys.ensure_active() == new
    assert {k["kid"] for k in keys.jwks()["keys"]} == {old, new}
    states = {k.kid: (k.state, k.publish_until) for k in keys.inventory()}
    assert states[new] == ("active", None)
    assert states[old][0] == "published"
    assert states[old][1].timestamp() == pytest.approx(clock() + 2 * 86400)


def test_rotate_erases_the_retired_private_key(engine):
    keys = SigningKeys(engine)
    old = keys.ensure_active()
    keys.rotate(timedelta(days=1))
    with engine.connect() as conn:
        private = conn.execute(select(t.signing_keys.c.private_jwk).where(t.signing_keys.c.kid == old)).scalar_one()
    assert private == ""


def test_retired_key_leaves_the_jwks_after_publish_until(engine):
    clock = Clock()
    keys = SigningKeys(engine, clock=clock)
    old = keys.ensure_active()
    keys.rotate(timedelta(days=1))
    clock.advance(86400 - 1)
    assert old in {k["kid"] for k in keys.jwks()["keys"]}
    clock.advance(1)
    assert old not in {k["kid"] for k in keys.jwks()["keys"]}
    assert {k.kid: k.state for k in keys.inventory()}[old] == "expired"


def test_rotate_deletes_keys_no_longer_published(engine):
    clock = Clock()
    keys = SigningKeys(engine, clock=clock)
    first = keys.ensure_active()
    keys.rotate(timedelta(days=1))
    clock.advance(2 * 86400)
    keys.rotate(timedelta(days=1))
    assert first not in {k.kid for k in keys.inventory()}


def test_rotate_refuses_to_unpublish_before_the_longest_token_expires(engine):
    keys = SigningKeys(engine, max_token_ttl=timedelta(hours=2))
    keys.ensure_active()
    with pytest.raises(SigningError, match="longest token lifetime"):
        keys.rotate(timedelta(hours=1))
    assert [k.state for k in keys.inventory()] == ["active"]


def test_repr_shows_no_key_material(engine):
    keys = SigningKeys(engine)
    kid = keys.ensure_active()
    with engine.connect() as conn:
        private = json.loads(conn.execute(select(t.signing_keys.c.private_jwk)).scalar_one())
    assert private["d"] not in repr(keys) and kid not in repr(keys)


@pytest.mark.parametrize(
    ("duration", "text"),
    [(timedelta(days=1), "1d"), (timedelta(minutes=90), "90m"), (timedelta(hours=3), "3h"), (timedelta(seconds=61), "61s")],
)
def test_describe_duration_uses_the_largest_exact_unit(duration, text):
    assert describe_duration(duration) == text
