"""Dynamic client registration (RFC 7591) over HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mcp_acl.oauth._digest import digest
from mcp_acl.store import tables as t
from tests.oauth.harness import Client

REDIRECT = "http://127.0.0.1:9/callback"


def test_public_client_gets_an_id_and_no_secret(oauth):
    response = oauth.http.post("/register", json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "Pub"})
    body = response.json()
    assert response.status_code == 201
    assert body["token_endpoint_auth_method"] == "none" and "client_secret" not in body
    assert body["redirect_uris"] == [REDIRECT] and body["client_name"] == "Pub"


def test_confidential_client_gets_a_secret_that_is_stored_only_as_a_digest(oauth):
    response = oauth.http.post("/register", json={"redirect_uris": [REDIRECT]})
    body = response.json()
    assert response.status_code == 201 and body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_secret"] and body["client_secret_expires_at"] == 0
    with oauth.engine.connect() as conn:
        stored = conn.execute(select(t.clients.c.client_secret_hash).where(t.clients.c.client_id == body["client_id"])).scalar()
    assert stored == digest(body["client_secret"]) and body["client_secret"] not in stored


def test_confidential_client_exchanges_its_code_with_its_secret(oauth):
    body = oauth.http.post("/register", json={"redirect_uris": [REDIRECT]}).json()
    client = Client(body["client_id"], REDIRECT, body["client_secret"])
    answer, verifier, _ = oauth.authorize(client)
    without = oauth.exchange(client, answer["code"], verifier)
    assert without.status_code == 401
    answer, verifier, _ = oauth.authorize(client)
    with_secret = oauth.exchange(client, answer["code"], verifier, client_secret=client.secret)
    assert with_secret.status_code == 200, with_secret.text


@pytest.mark.parametrize("metadata, error", [
    ({"redirect_uris": [REDIRECT], "grant_types": ["client_credentials"]}, "invalid_client_metadata"),
    ({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "client_credentials"]}, "invalid_client_metadata"),
    ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["http://app.example.com/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://app.example.com/cb#frag"]}, "invalid_redirect_uri"),
    ({"redirect_uris": []}, "invalid_redirect_uri"),
    ({"client_name": "no redirect"}, "invalid_redirect_uri"),
    ({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
])
def test_bad_registrations_are_refused(oauth, metadata, error):
    response = oauth.http.post("/register", json=metadata)
    assert response.status_code == 400 and response.json()["error"] == error


def test_registration_that_is_not_a_json_object_is_refused(oauth):
    assert oauth.http.post("/register", json=[REDIRECT]).status_code == 400
    assert oauth.http.post("/register", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    assert oauth.http.post("/register", data={"redirect_uris": REDIRECT}).status_code == 400
