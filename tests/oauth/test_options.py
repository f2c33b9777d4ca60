"""The embedded issuer's configuration checks."""

from __future__ import annotations

import pytest

from mcp_acl.oauth.options import OAuthConfigError, ServerOptions


@pytest.mark.parametrize("issuer", ["http://acl.example.com", "https://acl.example.com/", "ftp://x", "https://x?y=1"])
def test_unusable_issuers_are_refused(issuer):
    with pytest.raises(OAuthConfigError):
        ServerOptions(issuer=issuer, resource="https://acl.example.com/mcp")


def test_loopback_http_and_any_https_issuer_are_accepted():
    for issuer in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "https://acl.example.com"):
        ServerOptions(issuer=issuer, resource=f"{issuer}/mcp")
