"""The token endpoint's refusals: PKCE, codes, resources, refresh tokens, scopes."""

from __future__ import annotations

import base64
import json

from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from tests.oauth.harness import pkce_pair, redirect_params


def _error(response) -> str:
    return response.json()["error"]


def test_wrong_code_verifier_is_refused(oauth):
    client = oauth.register()
    answer, _, _ = oauth.authorize(client)
    response = oauth.exchange(client, answer["code"], pkce_pair()[0])
    assert response.status_code == 400 and _error(response) == "invalid_grant"


def test_missing_code_verifier_is_refused(oauth):
    client = oauth.register()
    answer, _, _ = oauth.authorize(client)
    response = oauth.exchange(client, answer["code"], None)
    assert response.status_code == 400 and _error(response) == "invalid_request"


def test_code_refused_once_with_a_wrong_verifier_cannot_be_retried(oauth):
    client = oauth.register()
    answer, verifier, _ = oauth.authorize(client)
    oauth.exchange(client, answer["code"], pkce_pair()[0])
    assert _error(oauth.exchange(client, answer["code"], verifier)) == "invalid_grant"


def test_plain_code_challenge_method_is_refused(oauth):
    client = oauth.register()
    verifier = pkce_pair()[0]
    with oauth.browser() as browser:
        response = browser.get("/authorize", params=oauth.authorize_params(client, verifier, code_challenge_method="plain", state="p"))
    answer = redirect_params(response)
    assert answer["error"] == "invalid_request" and answer["state"] == "p"


def test_code_challenge_without_a_method_is_refused(oauth):
    # RFC 7636 §4.3: no method means plain.
    client = oauth.register()
    with oauth.browser() as browser:
        response = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1], code_challenge_method=None))
    assert redirect_params(response)["error"] == "invalid_request"


def test_authorization_request_without_pkce_is_refused(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        response = browser.get("/authorize", params=oauth.authorize_params(client, None, code_challenge_method=None))
    assert redirect_params(response)["error"] == "invalid_request"


def test_reused_code_is_refused_and_revokes_what_it_issued(oauth):
    client = oauth.register()
    answer, verifier, _ = oauth.authorize(client)
    first = oauth.exchange(client, answer["code"], verifier)
    assert first.status_code == 200
    again = oauth.exchange(client, answer["code"], verifier)
    assert again.status_code == 400 and _error(again) == "invalid_grant"
    assert _error(oauth.refresh(client, first.json()["refresh_token"])) == "invalid_grant"


def test_expired_code_is_refused(oauth, expire):
    client = oauth.register()
    answer, verifier, _ = oauth.authorize(client)
    expire(oauth.engine, t.oauth_codes)
    assert _error(oauth.exchange(client, answer["code"], verifier)) == "invalid_grant"


def test_code_of_another_client_is_refused(oauth):
    client, other = oauth.register(), oauth.register()
    answer, verifier, _ = oauth.authorize(client)
    other.redirect_uri = client.redirect_uri
    assert _error(oauth.exchange(other, answer["code"], verifier)) == "invalid_grant"


def test_token_request_with_another_redirect_uri_is_refused(oauth):
    client = oauth.register()
    answer, verifier, _ = oauth.authorize(client)
    response = oauth.exchange(client, answer["code"], verifier, redirect_uri="http://127.0.0.1:1/other")
    assert _error(response) == "invalid_grant"


def test_resource_that_is_not_this_server_is_refused_at_the_authorization_endpoint(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        response = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1], resource="https://other.example/mcp"))
    assert redirect_params(response)["error"] == "invalid_target"


def test_resource_that_is_not_this_server_is_refused_at_the_token_endpoint(oauth):
    client = oauth.register()
    answer, verifier, _ = oauth.authorize(client)
    response = oauth.exchange(client, answer["code"], verifier, resource="https://other.example/mcp")
    assert response.status_code == 400 and _error(response) == "invalid_target"


def test_client_credentials_for_another_resource_is_refused(oauth):
    secret = oauth.make_confidential("ollama-agent")
    response = oauth.http.post("/token", data={"grant_type": "client_credentials", "resource": "https://other.example/mcp"},
                               auth=("ollama-agent", secret))
    assert _error(response) == "invalid_target"


def test_access_token_audience_is_the_resource(oauth):
    client = oauth.register()
    tokens = oauth.tokens_for(client)
    header, payload, _ = tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["typ"] == "at+jwt"
    assert claims["aud"] == oauth.resource and claims["sub"] == "alice" and claims["client_id"] == client.client_id
    assert claims["iss"] == oauth.settings.embedded_issuer_url and claims["scope"] == "mcp"
    assert {"exp", "iat", "jti"} <= set(claims)


def test_unknown_scopes_are_dropped_and_none_left_is_refused(oauth):
    client = oauth.register()
    answer, verifier, _ = oauth.authorize(client, scope="mcp offline_access")
    assert oauth.exchange(client, answer["code"], verifier).json()["scope"] == "mcp"
    with oauth.browser() as browser:
        response = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1], scope="admin"))
    assert redirect_params(response)["error"] == "invalid_scope"


def test_refresh_is_refused_once_the_user_is_disabled(oauth):
    client = oauth.register()
    tokens = oauth.tokens_for(client, "bob")
    PolicyAdmin(oauth.engine).set_user_disabled("bob", True)
    assert _error(oauth.refresh(client, tokens["refresh_token"])) == "invalid_grant"


def test_refresh_token_of_another_client_is_refused_and_its_family_revoked(oauth):
    client, other = oauth.register(), oauth.register()
    tokens = oauth.tokens_for(client)
    assert _error(oauth.refresh(other, tokens["refresh_token"])) == "invalid_grant"
    assert _error(oauth.refresh(client, tokens["refresh_token"])) == "invalid_grant"


def test_expired_refresh_token_is_refused(oauth, expire):
    client = oauth.register()
    tokens = oauth.tokens_for(client)
    expire(oauth.engine, t.oauth_refresh_tokens)
    assert _error(oauth.refresh(client, tokens["refresh_token"])) == "invalid_grant"


def test_public_client_cannot_use_client_credentials(oauth):
    client = oauth.register()
    response = oauth.http.post("/token", data={"grant_type": "client_credentials", "client_id": client.client_id})
    assert _error(response) in ("invalid_client", "unauthorized_client")
