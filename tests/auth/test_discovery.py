"""Where an issuer's metadata document is looked for (RFC 8414 and OpenID discovery)."""

from __future__ import annotations

import pytest

from mcp_acl.auth.discovery import discovery_urls


def test_issuer_without_a_path_tries_each_well_known_name_once():
    assert discovery_urls("https://idp.example") == [
        "https://idp.example/.well-known/oauth-authorization-server",
        "https://idp.example/.well-known/openid-configuration",
    ]


def test_issuer_with_a_path_tries_rfc8414_insertion_first():
    assert discovery_urls("https://kc.example/realms/acme") == [
        "https://kc.example/.well-known/oauth-authorization-server/realms/acme",
        "https://kc.example/realms/acme/.well-known/openid-configuration",
        "https://kc.example/realms/acme/.well-known/oauth-authorization-server",
    ]


@pytest.mark.parametrize("issuer", ["https://tenant.auth0.com/", "https://tenant.auth0.com"])
def test_a_trailing_slash_does_not_double_the_slash(issuer):
    assert discovery_urls(issuer)[1] == "https://tenant.auth0.com/.well-known/openid-configuration"
