"""Minting RFC 9068 access tokens with the embedded issuer's keys."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from joserfc import jws
from joserfc.jwk import RSAKey

from mcp_acl.auth import SigningError, SigningKeys
from mcp_acl.auth.tokens import scope_string
from tests.auth.support import EMBEDDED_ISSUER, RESOURCE, Clock, mint

ISSUER = EMBEDDED_ISSUER


def _decode(keys: SigningKeys, token: str) -> tuple[dict, dict]:
    public = RSAKey.import_key(keys.jwks()["keys"][0])
    obj = jws.deserialize_compact(token, public, algorithms=["RS256"])
    return obj.headers(), json.loads(obj.payload)


def _mint(keys: SigningKeys, **overrides) -> str:
    return mint(keys, **{"ttl": timedelta(minutes=30), **overrides})


def test_user_token_carries_the_rfc9068_claims(engine):
    clock = Clock(1_800_000_000)
    keys = SigningKeys(engine, clock=clock)
    header, claims = _decode(keys, _mint(keys, scopes=["mcp", "files"]))
    assert header["typ"] == "at+jwt"
    jti = claims.pop("jti")
    assert isinstance(jti, str) and len(jti) >= 16
    assert claims == {
        "iss": ISSUER,
        "sub": "alice",
        "aud": RESOURCE,
        "client_id": "agent",
        "scope": "mcp files",
        "iat": 1_800_000_000,
        "nbf": 1_800_000_000,
        "exp": 1_800_000_000 + 1800,
    }


def test_service_token_puts_the_client_id_in_sub(engine):
    keys = SigningKeys(engine)
    _, claims = _decode(keys, _mint(keys, subject=None, client_id="ollama-agent"))
    assert (claims["sub"], claims["client_id"]) == ("ollama-agent", "ollama-agent")


def test_each_token_gets_its_own_jti(engine):
    keys = SigningKeys(engine)
    assert _decode(keys, _mint(keys))[1]["jti"] != _decode(keys, _mint(keys))[1]["jti"]


def test_user_named_like_its_client_is_refused(engine):
    with pytest.raises(SigningError, match="same name as the client"):
        _mint(SigningKeys(engine), subject="agent", client_id="agent")


def test_extra_claims_are_added_but_cannot_replace_registered_ones(engine):
    keys = SigningKeys(engine)
    _, claims = _decode(keys, _mint(keys, extra_claims={"roles": ["analyst"]}))
    assert claims["roles"] == ["analyst"]
    with pytest.raises(SigningError, match="sub"):
        _mint(keys, extra_claims={"sub": "root"})


@pytest.mark.parametrize("bad", ["", "two words", 'quote"d', 7])
def test_invalid_scope_is_refused(bad):
    with pytest.raises(SigningError, match="scope"):
        scope_string(["mcp", bad])


def test_scope_string_drops_repeats_and_keeps_order():
    assert scope_string(["mcp", "files", "mcp"]) == "mcp files"


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-5)])
def test_non_positive_lifetime_is_refused(engine, ttl):
    with pytest.raises(SigningError, match="positive"):
        _mint(SigningKeys(engine), ttl=ttl)
