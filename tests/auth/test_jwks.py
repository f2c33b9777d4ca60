"""Key sources: an external issuer on loopback (discovery, JWKS, refetch), and JWK Set parsing."""

from __future__ import annotations

import socket

import httpx2
import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from mcp_acl.auth import KeysUnavailable, TokenRejected, build_verifier, protect
from mcp_acl.auth.jwks import parse_jwk_set
from mcp_acl.auth.middleware import IDENTITY_KEY
from mcp_acl.config import Settings
from mcp_acl.store import make_engine
from tests.auth.support import Clock, claims_for, sign_with

RESOURCE = "http://127.0.0.1:8000/mcp"


def external(issuer: str, **options) -> Settings:
    """Settings for an external issuer (no database needed)."""
    return Settings(database_url="sqlite://", resource_url=RESOURCE, issuer=issuer, **options)


def verifier_for(settings: Settings, clock: Clock | None = None):
    engine = make_engine("sqlite://")  # an external issuer never touches the database
    return build_verifier(settings, engine, clock=clock) if clock else build_verifier(settings, engine)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_external_issuer_token_is_accepted_over_http_with_roles_mapped(test_issuer, serve):
    issuer = test_issuer()
    settings = external(issuer.issuer, roles_claim="realm_access.roles")
    calls: list = []

    async def echo(scope, receive, send):
        calls.append(scope[IDENTITY_KEY])
        identity = scope[IDENTITY_KEY]
        await JSONResponse({"subject": identity.subject, "roles": sorted(identity.roles), "client": identity.client_id})(
            scope, receive, send
        )

    url = serve(Starlette(routes=[Route("/mcp", protect(echo, verifier_for(settings), settings))]))
    claims = claims_for(issuer.issuer, RESOURCE, client_id=None, azp="inspector", realm_access={"roles": ["analyst", 7]})
    del claims["client_id"]
    response = httpx2.get(url + "/mcp", headers={"Authorization": f"Bearer {issuer.sign(claims, typ='JWT')}"})
    assert response.status_code == 200
    assert response.json() == {"subject": "alice", "roles": ["analyst"], "client": "inspector"}


def test_discovery_document_naming_another_issuer_is_refused(test_issuer, serve):
    issuer = test_issuer(claimed_issuer="https://evil.example")
    settings = external(issuer.issuer)
    calls: list = []

    async def handler(scope, receive, send):
        calls.append(scope)

    url = serve(Starlette(routes=[Route("/mcp", protect(handler, verifier_for(settings), settings))]))
    token = issuer.sign(claims_for(issuer.issuer, RESOURCE))
    response = httpx2.get(url + "/mcp", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "keys are unavailable" in response.json()["error_description"]
    assert issuer.jwks_hits == 0
    assert calls == []


async def test_issuer_with_a_path_is_found_by_rfc8414_path_insertion(test_issuer):
    issuer = test_issuer(path="/realms/acme", documents=("oauth-inserted",))
    verified = await verifier_for(external(issuer.issuer)).verify(issuer.sign(claims_for(issuer.issuer, RESOURCE)))
    assert verified.issuer.endswith("/realms/acme")


async def test_oauth_metadata_appended_to_the_issuer_is_found(test_issuer):
    issuer = test_issuer(path="/tenant", documents=("oauth",))
    verified = await verifier_for(external(issuer.issuer)).verify(issuer.sign(claims_for(issuer.issuer, RESOURCE)))
    assert verified.subject == "alice"


async def test_jwks_url_setting_is_used_without_discovery(test_issuer):
    issuer = test_issuer(documents=())
    settings = external(issuer.issuer, jwks_url=issuer.url + "/keys")
    assert (await verifier_for(settings).verify(issuer.sign(claims_for(issuer.issuer, RESOURCE)))).subject == "alice"


async def test_unreachable_jwks_refuses_the_token(test_issuer):
    issuer = test_issuer(documents=())
    settings = external(issuer.issuer, jwks_url=f"http://127.0.0.1:{closed_port()}/keys")
    with pytest.raises(TokenRejected, match="keys are unavailable"):
        await verifier_for(settings).verify(issuer.sign(claims_for(issuer.issuer, RESOURCE)))


async def test_missing_discovery_document_refuses_the_token(test_issuer):
    issuer = test_issuer(documents=())
    with pytest.raises(TokenRejected, match="keys are unavailable"):
        await verifier_for(external(issuer.issuer)).verify(issuer.sign(claims_for(issuer.issuer, RESOURCE)))


async def test_unknown_kid_refetches_the_jwks_at_most_once_per_interval(test_issuer):
    issuer = test_issuer()
    clock = Clock()
    verifier = verifier_for(external(issuer.issuer), clock)
    await verifier.verify(issuer.sign(claims_for(issuer.issuer, RESOURCE)))
    assert issuer.jwks_hits == 1
    # The issuer rotates: tokens now name a kid the cached set lacks.
    issuer.kid = "issuer-key-2"
    new_token = issuer.sign(claims_for(issuer.issuer, RESOURCE, jti="new"))
    issuer.kid = "issuer-key-1"  # ...but its JWKS does not show the new key yet
    for _ in range(3):
        with pytest.raises(TokenRejected, match="unknown key"):
            await verifier.verify(new_token)
    assert issuer.jwks_hits == 2  # one refetch for the first unknown kid, none for the rest
    issuer.kid = "issuer-key-2"
    clock.advance(30)
    assert (await verifier.verify(new_token)).subject == "alice"
    assert issuer.jwks_hits == 3


async def test_jwt_typ_is_refused_when_not_among_the_configured_types(test_issuer):
    issuer = test_issuer()
    verifier = verifier_for(external(issuer.issuer, token_types=("at+jwt",)))
    with pytest.raises(TokenRejected, match="typ"):
        await verifier.verify(issuer.sign(claims_for(issuer.issuer, RESOURCE), typ="JWT"))


async def test_external_token_without_typ_is_refused(test_issuer):
    issuer = test_issuer()
    with pytest.raises(TokenRejected, match="typ"):
        await verifier_for(external(issuer.issuer)).verify(issuer.sign(claims_for(issuer.issuer, RESOURCE), typ=None))


def test_jwk_set_parsing_keeps_only_asymmetric_signature_keys_with_a_kid():
    rsa = RSAKey.generate_key(2048).as_dict(private=False)
    ec = ECKey.generate_key("P-256").as_dict(private=False)
    secret = OctKey.generate_key(256).as_dict(private=True)
    keys = parse_jwk_set(
        {
            "keys": [
                {**rsa, "kid": "rsa"},
                {**ec, "kid": "ec", "alg": "ES256"},
                {**secret, "kid": "secret"},
                {**rsa, "kid": "enc", "use": "enc"},
                {**rsa},
                {"kty": "RSA", "kid": "broken", "n": "?", "e": "?"},
                "not a key",
            ]
        }
    )
    assert sorted(keys) == ["ec", "rsa"]
    assert keys["ec"].alg == "ES256"


def test_jwk_set_parsing_keeps_the_first_of_two_keys_under_one_kid():
    first, second = RSAKey.generate_key(2048), RSAKey.generate_key(2048)
    keys = parse_jwk_set({"keys": [{**k.as_dict(private=False), "kid": "same"} for k in (first, second)]})
    assert keys["same"].key.as_dict(private=False)["n"] == first.as_dict(private=False)["n"]


def test_a_document_that_is_not_a_jwk_set_is_refused():
    with pytest.raises(KeysUnavailable, match="not a JWK Set"):
        parse_jwk_set({"issuer": "x"})


async def test_an_unknown_kid_on_the_first_load_costs_one_fetch(test_issuer):
    issuer = test_issuer()
    stranger = RSAKey.generate_key(2048)
    token = sign_with(stranger, claims_for(issuer.issuer, RESOURCE), kid="nobody")
    with pytest.raises(TokenRejected, match="unknown key"):
        await verifier_for(external(issuer.issuer)).verify(token)
    assert issuer.jwks_hits == 1


async def test_a_failed_reload_after_max_age_refuses_tokens_and_is_retried_once_per_interval(test_issuer):
    issuer = test_issuer()
    clock = Clock()
    verifier = verifier_for(external(issuer.issuer), clock)
    first = issuer.sign(claims_for(issuer.issuer, RESOURCE, jti="1"))
    await verifier.verify(first)
    issuer.jwks_down = True
    clock.advance(300)  # the key set's max age
    fresh = issuer.sign(claims_for(issuer.issuer, RESOURCE, jti="2"))
    for _ in range(3):
        with pytest.raises(TokenRejected, match="keys are unavailable"):
            await verifier.verify(fresh)
    assert issuer.jwks_hits == 2
    issuer.jwks_down = False
    clock.advance(30)
    assert (await verifier.verify(fresh)).subject == "alice"


async def test_a_key_set_that_is_not_json_refuses_the_token(test_issuer, serve):
    async def garbage(request):
        return PlainTextResponse("<html>login</html>")

    issuer = test_issuer(documents=())
    elsewhere = serve(Starlette(routes=[Route("/keys", garbage)]))
    settings = external(issuer.issuer, jwks_url=elsewhere + "/keys")
    with pytest.raises(TokenRejected, match="keys are unavailable"):
        await verifier_for(settings).verify(issuer.sign(claims_for(issuer.issuer, RESOURCE)))


async def test_an_oversized_key_set_is_cut_off_and_refuses_the_token(test_issuer):
    issuer = test_issuer()
    issuer.extra_keys = [{"kty": "RSA", "kid": f"pad-{i}", "n": "x" * 1000, "e": "AQAB"} for i in range(600)]
    with pytest.raises(TokenRejected, match="keys are unavailable"):
        await verifier_for(external(issuer.issuer)).verify(issuer.sign(claims_for(issuer.issuer, RESOURCE)))
