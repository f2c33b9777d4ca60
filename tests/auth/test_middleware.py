"""The bearer guard over real HTTP: every bad token is refused before the handler runs."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx2
import pytest
from joserfc.jwk import RSAKey
from mcp.server.auth.middleware.auth_context import get_access_token
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_acl.auth import SigningKeys, auth_routes, build_verifier, caller_token, protect
from mcp_acl.auth.middleware import IDENTITY_KEY
from mcp_acl.config import Settings
from mcp_acl.store import make_engine, upgrade
from tests.auth.support import RESOURCE, b64, b64json, claims_for, mint, sign_with

METADATA = "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"


@dataclass
class Guarded:
    """A protected echo endpoint at /mcp on loopback, counting the calls that reach it."""

    url: str
    settings: Settings
    keys: SigningKeys
    calls: list = field(default_factory=list)
    refusals: list = field(default_factory=list)

    def mint(self, *, keys: SigningKeys | None = None, **overrides) -> str:
        """A token from the embedded issuer; keyword arguments replace the defaults."""
        return mint(keys or self.keys, **overrides)

    def get(self, token: str | None = None, **kw) -> httpx2.Response:
        """GET /mcp, with `Authorization: Bearer token` when a token is given."""
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx2.get(self.url + "/mcp", headers=headers, **kw)


def echo_app(calls: list):
    """An ASGI app that records its call and answers with what the guard gave it."""

    async def app(scope, receive, send) -> None:
        calls.append(scope["path"])
        identity = scope[IDENTITY_KEY]
        token = get_access_token()
        body = {
            "subject": identity.subject,
            "client_id": identity.client_id,
            "issuer": identity.issuer,
            "scopes": sorted(identity.scopes),
            "user": scope["user"].username,
            "context_subject": token.subject if token else None,
            "context_claims_sub": (token.claims or {}).get("sub") if token else None,
            # The token itself is kept from handlers; only an upstream's token exchange reads it.
            "context_token": token.token if token else None,
            "caller_token_held": caller_token.current() is not None,
        }
        await JSONResponse(body)(scope, receive, send)

    return app


@pytest.fixture
def guarded(sqlite_url, serve) -> Iterator[Guarded]:
    """The embedded issuer's keys in SQLite, and the guarded echo endpoint serving them.

    SQLite only: these tests are about HTTP; keys and verification on
    PostgreSQL are covered in test_keys.py and test_verifier.py.
    """
    engine = make_engine(sqlite_url)
    upgrade(engine)
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False), resource_url=RESOURCE)
    keys = SigningKeys(engine)
    state = Guarded(url="", settings=settings, keys=keys)
    verifier = build_verifier(settings, engine)

    def on_refused(reason: str, info: dict) -> None:
        state.refusals.append((reason, info))

    guard = protect(echo_app(state.calls), verifier, settings, on_refused)
    app = Starlette(routes=[Route("/mcp", guard, methods=["GET", "POST"]), *auth_routes(settings, keys)])
    state.url = serve(app)
    yield state
    engine.dispose()


def assert_refused(response: httpx2.Response, guarded: Guarded, status: int, error: str, says: str) -> None:
    """The response is the refusal named, pointing at the metadata, and the handler never ran."""
    assert response.status_code == status
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer error="{error}", error_description="')
    assert f'resource_metadata="{METADATA}"' in challenge
    if status != 400:
        assert 'scope="mcp"' in challenge
    body = response.json()
    assert body["error"] == error
    assert says in body["error_description"]
    assert guarded.calls == []


def test_valid_token_reaches_the_handler_with_its_identity(guarded):
    response = guarded.get(guarded.mint())
    assert response.status_code == 200
    assert response.json() == {
        "subject": "alice",
        "client_id": "agent",
        "issuer": "http://127.0.0.1:8000",
        "scopes": ["mcp"],
        "user": "agent",
        "context_subject": "alice",
        "context_claims_sub": "alice",
        "context_token": "withheld",
        "caller_token_held": True,
    }
    assert guarded.calls == ["/mcp"]


def test_service_token_reaches_the_handler_as_a_service_identity(guarded):
    body = guarded.get(guarded.mint(subject=None, client_id="ollama-agent")).json()
    assert (body["subject"], body["client_id"], body["context_claims_sub"]) == (None, "ollama-agent", "ollama-agent")


def test_expired_token_gets_401(guarded):
    past = SigningKeys(guarded.keys.engine, clock=lambda: time.time() - 7200)
    response = guarded.get(guarded.mint(keys=past))
    assert_refused(response, guarded, 401, "invalid_token", "expired")


def test_not_yet_valid_token_gets_401(guarded):
    future = SigningKeys(guarded.keys.engine, clock=lambda: time.time() + 3600)
    response = guarded.get(guarded.mint(keys=future))
    assert_refused(response, guarded, 401, "invalid_token", "not valid yet")


def test_wrong_issuer_gets_401(guarded):
    response = guarded.get(guarded.mint(issuer="http://127.0.0.1:9999"))
    assert_refused(response, guarded, 401, "invalid_token", "another issuer")


def test_wrong_audience_gets_401(guarded):
    response = guarded.get(guarded.mint(audience="http://127.0.0.1:8000/other"))
    assert_refused(response, guarded, 401, "invalid_token", "not meant for this server")


def test_audience_list_that_includes_the_resource_is_accepted(guarded):
    token = guarded.keys.sign(_claims(guarded, aud=["https://elsewhere.example", RESOURCE]))
    assert guarded.get(token).status_code == 200


def test_missing_scope_gets_403_insufficient_scope(guarded):
    response = guarded.get(guarded.mint(scopes=["files"]))
    assert_refused(response, guarded, 403, "insufficient_scope", "lacks the scope mcp")


def test_alg_none_gets_401(guarded):
    kid = guarded.keys.ensure_active()
    token = f"{b64json({'alg': 'none', 'kid': kid, 'typ': 'at+jwt'})}.{b64json(_claims(guarded))}.{b64(b'x')}"
    assert_refused(guarded.get(token), guarded, 401, "invalid_token", "algorithm is not accepted")


def test_unsigned_alg_none_token_gets_401(guarded):
    kid = guarded.keys.ensure_active()
    token = f"{b64json({'alg': 'none', 'kid': kid, 'typ': 'at+jwt'})}.{b64json(_claims(guarded))}."
    assert_refused(guarded.get(token), guarded, 401, "invalid_token", "no signature")


def test_hs256_signed_with_the_public_key_gets_401(guarded):
    kid = guarded.keys.ensure_active()
    public_pem = RSAKey.import_key(guarded.keys.jwks()["keys"][0]).as_pem(private=False)
    signing_input = f"{b64json({'alg': 'HS256', 'kid': kid, 'typ': 'at+jwt'})}.{b64json(_claims(guarded))}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    response = guarded.get(f"{signing_input}.{b64(mac)}")
    assert_refused(response, guarded, 401, "invalid_token", "algorithm is not accepted")


def test_unknown_kid_gets_401(guarded):
    stranger = RSAKey.generate_key(2048)
    response = guarded.get(sign_with(stranger, _claims(guarded), kid="no-such-key"))
    assert_refused(response, guarded, 401, "invalid_token", "unknown key")


def test_key_not_in_the_jwks_under_a_known_kid_gets_401(guarded):
    kid = guarded.keys.ensure_active()
    impostor = RSAKey.generate_key(2048)
    response = guarded.get(sign_with(impostor, _claims(guarded), kid=kid))
    assert_refused(response, guarded, 401, "invalid_token", "signature is invalid")


def test_tampered_payload_gets_401(guarded):
    header, _, signature = guarded.mint().split(".")
    forged = f"{header}.{b64json(_claims(guarded, sub='admin'))}.{signature}"
    assert_refused(guarded.get(forged), guarded, 401, "invalid_token", "signature is invalid")


def test_stripped_signature_gets_401(guarded):
    header, payload, _ = guarded.mint().split(".")
    assert_refused(guarded.get(f"{header}.{payload}."), guarded, 401, "invalid_token", "no signature")


def test_wrong_typ_for_the_embedded_issuer_gets_401(guarded):
    token = guarded.keys.sign(_claims(guarded), typ="JWT")
    assert_refused(guarded.get(token), guarded, 401, "invalid_token", "typ")


def test_token_in_the_query_string_gets_400(guarded):
    response = guarded.get(params={"access_token": guarded.mint()})
    assert_refused(response, guarded, 400, "invalid_request", "only in the Authorization header")


def test_token_in_the_query_string_is_refused_even_beside_a_header(guarded):
    token = guarded.mint()
    response = guarded.get(token, params={"access_token": token})
    assert_refused(response, guarded, 400, "invalid_request", "only in the Authorization header")


def test_a_percent_encoded_access_token_parameter_is_refused_too(guarded):
    token = guarded.mint()
    response = httpx2.get(guarded.url + f"/mcp?access%5Ftoken={token}", headers={"Authorization": f"Bearer {token}"})
    assert_refused(response, guarded, 400, "invalid_request", "only in the Authorization header")


def test_an_unrelated_query_string_does_not_stop_a_good_token(guarded):
    response = guarded.get(guarded.mint(), params={"page": "2"})
    assert response.status_code == 200 and response.json()["subject"] == "alice"


def test_repeated_requests_each_get_their_own_tokens_identity(guarded):
    # The guard remembers what each verified token became; it must never
    # hand one caller's identity to another.
    alice, bob = guarded.mint(), guarded.mint(subject="bob")
    for _ in range(3):
        assert guarded.get(alice).json()["subject"] == "alice"
        assert guarded.get(bob).json()["subject"] == "bob"
        assert guarded.get(bob).json()["context_subject"] == "bob"


def test_token_in_a_form_body_gets_400(guarded):
    response = httpx2.post(guarded.url + "/mcp", data={"access_token": guarded.mint()})
    assert_refused(response, guarded, 400, "invalid_request", "form bodies")


def test_no_token_gets_401(guarded):
    assert_refused(guarded.get(), guarded, 401, "invalid_token", "no access token")


@pytest.mark.parametrize("value", ["Bearer", "Token abc", "Basic YWxpY2U6c2VjcmV0", "Bearer a b", "Bearer \"quoted\"", "bearer"])
def test_malformed_authorization_header_gets_401(guarded, value):
    response = guarded.get(headers={"Authorization": value})
    assert_refused(response, guarded, 401, "invalid_token", "does not hold a Bearer token")


def test_garbage_bearer_token_gets_401(guarded):
    assert_refused(guarded.get("not-a-jwt"), guarded, 401, "invalid_token", "not a signed JWT")


def test_refusal_is_reported_with_unverified_names_and_without_the_token(guarded):
    token = guarded.mint(issuer="http://127.0.0.1:9999")
    guarded.get(token)
    [(reason, info)] = guarded.refusals
    assert reason == "the token was issued by another issuer"
    assert info["iss"] == "http://127.0.0.1:9999"
    assert (info["sub"], info["client_id"], info["path"], info["status"]) == ("alice", "agent", "/mcp", 401)
    assert info["remote_addr"] == "127.0.0.1"
    assert token not in json.dumps(info)


def test_lowercase_bearer_scheme_is_accepted(guarded):
    response = guarded.get(headers={"Authorization": f"bearer {guarded.mint()}"})
    assert response.status_code == 200


def _claims(guarded: Guarded, **overrides) -> dict:
    return claims_for(guarded.settings.embedded_issuer_url, RESOURCE, **overrides)
