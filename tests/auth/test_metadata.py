"""RFC 9728 protected-resource metadata and the embedded JWKS, over HTTP."""

from __future__ import annotations

import httpx2
import pytest
from starlette.applications import Starlette

from mcp_acl.auth import SigningKeys, auth_routes, resource_metadata_url
from mcp_acl.config import Settings

RESOURCE = "http://127.0.0.1:8000/mcp"


def test_metadata_is_served_at_the_root_and_the_path_suffixed_well_known_urls(engine, serve):
    settings = Settings(database_url="x", resource_url=RESOURCE)
    url = serve(Starlette(routes=auth_routes(settings, SigningKeys(engine))))
    expected = {
        "resource": RESOURCE,
        "authorization_servers": ["http://127.0.0.1:8000"],
        "scopes_supported": ["mcp"],
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-acl",
    }
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        response = httpx2.get(url + path)
        assert response.status_code == 200
        assert response.json() == expected


def test_metadata_names_the_external_issuer_and_serves_no_jwks(serve):
    settings = Settings(database_url="x", resource_url=RESOURCE, issuer="https://idp.example/realms/acme")
    url = serve(Starlette(routes=auth_routes(settings, None)))
    assert httpx2.get(url + "/.well-known/oauth-protected-resource/mcp").json()["authorization_servers"] == [
        "https://idp.example/realms/acme"
    ]
    assert httpx2.get(url + "/jwks.json").status_code == 404


def test_embedded_jwks_lists_the_active_key_without_private_members(engine, serve):
    keys = SigningKeys(engine)
    kid = keys.ensure_active()
    url = serve(Starlette(routes=auth_routes(Settings(database_url="x"), keys)))
    [key] = httpx2.get(url + "/jwks.json").json()["keys"]
    assert key["kid"] == kid
    assert {"d", "p", "q", "dp", "dq", "qi"}.isdisjoint(key)


def test_metadata_may_be_read_cross_origin(engine, serve):
    url = serve(Starlette(routes=auth_routes(Settings(database_url="x"), SigningKeys(engine))))
    assert httpx2.get(url + "/.well-known/oauth-protected-resource").headers["access-control-allow-origin"] == "*"
    preflight = httpx2.options(url + "/jwks.json", headers={"Origin": "http://localhost:6274"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("resource", "metadata"),
    [
        ("http://127.0.0.1:8000/mcp", "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"),
        ("https://acl.example/tenant/mcp/", "https://acl.example/.well-known/oauth-protected-resource/tenant/mcp"),
        ("https://acl.example", "https://acl.example/.well-known/oauth-protected-resource"),
    ],
)
def test_resource_metadata_url_inserts_the_well_known_part_before_the_path(resource, metadata):
    assert resource_metadata_url(Settings(database_url="x", resource_url=resource)) == metadata
