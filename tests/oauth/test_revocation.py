"""Token revocation (RFC 7009) over HTTP."""

from __future__ import annotations


def test_revoking_a_refresh_token_ends_its_family(oauth):
    client = oauth.register()
    tokens = oauth.tokens_for(client)
    rotated = oauth.refresh(client, tokens["refresh_token"]).json()
    response = oauth.http.post("/revoke", data={"token": rotated["refresh_token"], "client_id": client.client_id})
    assert response.status_code == 200
    assert oauth.refresh(client, rotated["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoking_an_unknown_token_answers_200(oauth):
    client = oauth.register()
    response = oauth.http.post("/revoke", data={"token": "not-a-token", "client_id": client.client_id})
    assert response.status_code == 200


def test_another_client_cannot_revoke_a_token(oauth):
    client, other = oauth.register(), oauth.register()
    tokens = oauth.tokens_for(client)
    response = oauth.http.post("/revoke", data={"token": tokens["refresh_token"], "client_id": other.client_id})
    assert response.status_code == 400
    assert oauth.refresh(client, tokens["refresh_token"]).status_code == 200


def test_a_refresh_token_is_revoked_whatever_the_hint_says(oauth):
    client = oauth.register()
    tokens = oauth.tokens_for(client)
    response = oauth.http.post(
        "/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "access_token", "client_id": client.client_id},
    )
    assert response.status_code == 200
    assert oauth.refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def _initialize(oauth, access_token: str):
    from tests.gateway.harness import HEADERS, INIT

    return oauth.http.post("/mcp", headers={**HEADERS, "Authorization": f"Bearer {access_token}"}, json=INIT)


def test_revoking_a_refresh_token_refuses_the_access_tokens_of_its_family_at_once(oauth_any):
    client, other = oauth_any.register(), oauth_any.register()
    tokens, bystander = oauth_any.tokens_for(client), oauth_any.tokens_for(other)
    rotated = oauth_any.refresh(client, tokens["refresh_token"]).json()
    for access_token in (tokens["access_token"], rotated["access_token"]):
        assert _initialize(oauth_any, access_token).status_code == 200
    oauth_any.http.post("/revoke", data={"token": rotated["refresh_token"], "client_id": client.client_id})
    for access_token in (tokens["access_token"], rotated["access_token"]):
        refused = _initialize(oauth_any, access_token)
        assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert _initialize(oauth_any, bystander["access_token"]).status_code == 200


def test_a_replayed_refresh_token_refuses_the_family_s_access_tokens(oauth_any):
    client = oauth_any.register()
    tokens = oauth_any.tokens_for(client)
    rotated = oauth_any.refresh(client, tokens["refresh_token"]).json()
    assert oauth_any.refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"  # the replay
    assert _initialize(oauth_any, rotated["access_token"]).status_code == 401
