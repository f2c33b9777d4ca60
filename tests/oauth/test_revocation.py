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
