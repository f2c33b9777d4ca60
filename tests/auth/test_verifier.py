"""The access-token verifier on the embedded issuer's keys (SQLite and PostgreSQL), with a hand-moved clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from joserfc import jws
from joserfc.jwk import RSAKey
from mcp.server.auth.provider import AccessToken

from mcp_acl.auth import AccessTokenVerifier, AuthConfigError, SigningKeys, TokenRejected
from mcp_acl.auth.errors import KeysUnavailable
from mcp_acl.auth.jwks import embedded_key_set, parse_jwk_set
from tests.auth.support import EMBEDDED_ISSUER, RESOURCE, Clock, b64, b64json, mint, sign_with

ISSUER = EMBEDDED_ISSUER


class NoKeys:
    """A key source that knows no key at all."""

    async def key(self, kid: str):
        return None


class Unreachable:
    """A key source whose issuer cannot be reached."""

    async def key(self, kid: str):
        raise KeysUnavailable("cannot reach http://127.0.0.1:1/keys: ConnectError")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(engine, clock) -> SigningKeys:
    return SigningKeys(engine, clock=clock)


def make_verifier(keys: SigningKeys, clock: Clock, **options) -> AccessTokenVerifier:
    return AccessTokenVerifier(
        issuer=ISSUER, audience=RESOURCE, keys=embedded_key_set(keys, clock=clock), clock=clock, **options
    )


async def test_verified_token_says_who_and_until_when(keys, clock):
    verified = await make_verifier(keys, clock).verify(mint(keys, scopes=["mcp", "files"]))
    assert (verified.issuer, verified.subject, verified.client_id) == (ISSUER, "alice", "agent")
    assert verified.scopes == frozenset({"mcp", "files"})
    assert verified.expires_at.timestamp() == int(clock()) + 3600
    assert verified.claims["aud"] == RESOURCE


async def test_verify_token_gives_the_sdk_access_token(keys, clock):
    token = mint(keys, scopes=["mcp", "files"])
    access = await make_verifier(keys, clock).verify_token(token)
    assert isinstance(access, AccessToken)
    assert (access.client_id, access.subject, access.resource) == ("agent", "alice", RESOURCE)
    assert access.scopes == ["files", "mcp"]
    assert access.claims["iss"] == ISSUER


async def test_verify_token_gives_none_for_a_refused_token(keys, clock):
    assert await make_verifier(keys, clock).verify_token(mint(keys, scopes=["files"])) is None


async def test_token_within_the_leeway_after_exp_is_accepted(keys, clock):
    verifier = make_verifier(keys, clock, leeway=30)
    token = mint(keys, ttl=timedelta(seconds=60))
    clock.advance(60 + 29)
    assert (await verifier.verify(token)).subject == "alice"


async def test_token_past_the_leeway_is_refused_as_expired(keys, clock):
    verifier = make_verifier(keys, clock, leeway=30)
    token = mint(keys, ttl=timedelta(seconds=60))
    clock.advance(60 + 30)
    with pytest.raises(TokenRejected, match="expired") as refused:
        await verifier.verify(token)
    assert (refused.value.status, refused.value.error) == (401, "invalid_token")


def test_leeway_over_sixty_seconds_is_a_configuration_error(keys, clock):
    with pytest.raises(AuthConfigError, match="leeway"):
        make_verifier(keys, clock, leeway=61)


async def test_token_signed_by_a_retired_key_verifies_until_publish_until_then_not(engine, clock):
    keys = SigningKeys(engine, clock=clock, max_token_ttl=timedelta(hours=1))
    token = mint(keys, ttl=timedelta(hours=1))
    keys.rotate(timedelta(hours=1))
    clock.advance(3600 - 1)
    assert (await make_verifier(keys, clock).verify(token)).subject == "alice"
    clock.advance(1)
    # exp alone would still pass (within the leeway); the key is gone from the set.
    with pytest.raises(TokenRejected, match="unknown key"):
        await make_verifier(keys, clock).verify(token)


async def test_retired_key_stops_verifying_at_publish_until_even_when_cached(engine, clock):
    keys = SigningKeys(engine, clock=clock, max_token_ttl=timedelta(hours=1))
    verifier = make_verifier(keys, clock)
    token = mint(keys, ttl=timedelta(hours=1))
    keys.rotate(timedelta(hours=1))
    clock.advance(1800)
    assert (await verifier.verify(token)).subject == "alice"  # retired, still published: verifies
    clock.advance(1800)
    with pytest.raises(TokenRejected):
        await verifier.verify(token)  # publish_until has passed (and so has exp)


async def test_cached_token_is_refused_once_its_key_is_unpublished(engine, clock):
    # A token whose exp outlives its key's publication (rotate() forbids
    # this; here the limit is lowered behind its back): the key's end wins.
    keys = SigningKeys(engine, clock=clock, max_token_ttl=timedelta(hours=2))
    token = mint(keys, ttl=timedelta(hours=2))
    verifier = make_verifier(keys, clock)
    assert (await verifier.verify(token)).subject == "alice"
    keys.max_token_ttl = timedelta(hours=1)
    keys.rotate(timedelta(hours=1))
    clock.advance(3600 + 1)
    with pytest.raises(TokenRejected, match="no longer published|unknown key"):
        await make_verifier(keys, clock).verify(token)
    with pytest.raises(TokenRejected, match="no longer published|unknown key"):
        await verifier.verify(token)


async def test_token_from_a_key_made_after_startup_verifies_after_the_refetch_interval(keys, clock):
    verifier = make_verifier(keys, clock)
    assert (await verifier.verify(mint(keys))).subject == "alice"
    keys.rotate(timedelta(days=1))
    clock.advance(5)
    assert (await verifier.verify(mint(keys))).subject == "alice"


async def test_verified_tokens_are_cached_until_they_expire(keys, clock):
    verifier = make_verifier(keys, clock)
    token = mint(keys, ttl=timedelta(minutes=10))
    await verifier.verify(token)
    verifier.required_scope = "admin"  # a full verification would now refuse it
    assert (await verifier.verify(token)).subject == "alice"
    with pytest.raises(TokenRejected, match="lacks the scope admin"):
        await verifier.verify(mint(keys))
    clock.advance(600 + 60)  # past exp and the leeway
    with pytest.raises(TokenRejected, match="expired"):
        await verifier.verify(token)


async def test_cached_token_is_refused_when_its_key_leaves_the_set(keys, clock):
    verifier = make_verifier(keys, clock)
    token = mint(keys)
    await verifier.verify(token)
    verifier.keys = NoKeys()
    with pytest.raises(TokenRejected, match="unknown key"):
        await verifier.verify(token)


async def test_the_cache_keeps_only_the_newest_tokens(keys, clock):
    verifier = make_verifier(keys, clock, cache_size=1)
    first, second = mint(keys), mint(keys)
    await verifier.verify(first)
    await verifier.verify(second)
    verifier.required_scope = "admin"
    assert (await verifier.verify(second)).subject == "alice"
    with pytest.raises(TokenRejected):
        await verifier.verify(first)


async def test_unreachable_keys_refuse_the_token(keys, clock):
    verifier = AccessTokenVerifier(issuer=ISSUER, audience=RESOURCE, keys=Unreachable(), clock=clock)
    with pytest.raises(TokenRejected, match="keys are unavailable") as refused:
        await verifier.verify(mint(keys))
    assert refused.value.status == 401


async def test_token_naming_neither_subject_nor_client_is_refused(keys, clock):
    now = int(clock())
    claims = {"iss": ISSUER, "aud": RESOURCE, "scope": "mcp", "iat": now, "exp": now + 60}
    with pytest.raises(TokenRejected, match="neither a subject nor a client"):
        await make_verifier(keys, clock).verify(keys.sign(claims))


class OneKey:
    """A key source holding one test key."""

    def __init__(self, kid: str, key: RSAKey) -> None:
        self.keys = parse_jwk_set({"keys": [{**key.as_dict(private=False), "kid": kid}]})

    async def key(self, kid: str):
        return self.keys.get(kid)


@pytest.mark.parametrize("missing", ["iss", "aud", "exp", "iat"])
async def test_token_missing_an_essential_claim_is_refused(clock, missing):
    key = RSAKey.generate_key(2048)
    now = int(clock())
    claims = {"iss": ISSUER, "sub": "alice", "aud": RESOURCE, "scope": "mcp", "iat": now, "exp": now + 60}
    del claims[missing]
    verifier = AccessTokenVerifier(issuer=ISSUER, audience=RESOURCE, keys=OneKey("k", key), clock=clock)
    with pytest.raises(TokenRejected, match=f"no {missing} claim"):
        await verifier.verify(sign_with(key, claims, kid="k"))


async def test_duplicate_claim_names_are_refused(clock):
    key = RSAKey.generate_key(2048)
    now = int(clock())
    verifier = AccessTokenVerifier(issuer=ISSUER, audience=RESOURCE, keys=OneKey("k", key), clock=clock)
    payload = (
        f'{{"iss":"{ISSUER}","sub":"alice","sub":"admin","aud":"{RESOURCE}","scope":"mcp","iat":{now},"exp":{now + 60}}}'
    )
    token = jws.serialize_compact({"alg": "RS256", "kid": "k", "typ": "at+jwt"}, payload, key, algorithms=["RS256"])
    with pytest.raises(TokenRejected, match="repeats a member name"):
        await verifier.verify(token)


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("a" * 9000, "too large"),
        ("a.b.c.d.e", "encrypted tokens"),
        ("a.b", "not a signed JWT"),
        ("a.b.c!", "base64url"),
        (f"{b64(b'[1]')}.{b64(b'{}')}.{b64(b'sig')}", "header is not a JSON object"),
        (f"{b64json({'alg': 'HS256', 'kid': 'k'})}.{b64json({})}.{b64(b'sig')}", "algorithm is not accepted"),
        (f"{b64json({'alg': 'RS256', 'kid': 'k', 'crit': ['exp']})}.{b64json({})}.{b64(b'sig')}", "critical"),
        (f"{b64json({'alg': 'RS256'})}.{b64json({})}.{b64(b'sig')}", "names no signing key"),
        ("é.b.c", "not a JWS compact serialization"),
    ],
)
async def test_malformed_tokens_are_refused_before_any_key_is_used(clock, token, says):
    verifier = AccessTokenVerifier(issuer=ISSUER, audience=RESOURCE, keys=Unreachable(), clock=clock)
    with pytest.raises(TokenRejected, match=says) as refused:
        await verifier.verify(token)
    assert token not in refused.value.description


async def test_a_signed_expiry_past_what_a_date_holds_is_a_refusal_not_a_crash(clock):
    # Our issuer would not sign it; another issuer's key might.
    key = RSAKey.generate_key(2048)
    now = int(clock())
    claims = {"iss": ISSUER, "sub": "alice", "aud": RESOURCE, "scope": "mcp", "iat": now, "exp": 10**20}
    verifier = AccessTokenVerifier(issuer=ISSUER, audience=RESOURCE, keys=OneKey("k", key), clock=clock)
    token = sign_with(key, claims, kid="k")
    with pytest.raises(TokenRejected, match=r"expiry \(exp\)") as refused:
        await verifier.verify(token)
    assert (refused.value.status, refused.value.error) == (401, "invalid_token")


async def test_a_refusal_says_whether_the_signature_had_verified(keys, clock):
    verifier = make_verifier(keys, clock, leeway=30)
    token = mint(keys, ttl=timedelta(seconds=60))
    clock.advance(60 + 30)
    with pytest.raises(TokenRejected, match="expired") as expired:
        await verifier.verify(token)
    head, body, signature = token.split(".")
    with pytest.raises(TokenRejected) as forged:
        await verifier.verify(f"{head}.{body}.{signature[:-4]}AAAA")
    assert (expired.value.signed, forged.value.signed) == (True, False)
