"""RFC 8414 metadata paths and content."""

from __future__ import annotations

from mcp_acl.oauth.metadata import metadata_paths, server_metadata
from mcp_acl.oauth.options import ServerOptions


def test_root_issuer_serves_both_well_known_paths():
    options = ServerOptions(issuer="http://127.0.0.1:8000", resource="http://127.0.0.1:8000/mcp")
    assert metadata_paths(options) == ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]


def test_issuer_with_a_path_puts_it_after_the_well_known_part():
    options = ServerOptions(issuer="https://acl.example.com/tenant", resource="https://acl.example.com/mcp")
    assert metadata_paths(options) == [
        "/.well-known/oauth-authorization-server/tenant",
        "/.well-known/openid-configuration/tenant",
        "/tenant/.well-known/openid-configuration",
    ]
    assert server_metadata(options)["token_endpoint"] == "https://acl.example.com/tenant/token"


def test_metadata_advertises_only_s256_and_the_iss_response_parameter(oauth):
    document = oauth.http.get("/.well-known/oauth-authorization-server").json()
    assert document == oauth.http.get("/.well-known/openid-configuration").json()
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["issuer"] == oauth.settings.embedded_issuer_url
    assert oauth.http.get(document["jwks_uri"]).json()["keys"]
