"""Redirect URI rules (RFC 6749 §3.1.2, RFC 8252)."""

from __future__ import annotations

import pytest

from mcp_acl.oauth.redirects import RedirectUriError, check_registrable, check_registrable_list, matches


@pytest.mark.parametrize("uri", [
    "https://app.example.com/cb", "http://127.0.0.1:33418/", "http://[::1]:8080/cb", "http://localhost:3334/oauth/callback",
    "cursor://anysphere.cursor-retrieval/oauth/callback", "com.example.app:/oauth2redirect",
])
def test_registrable_redirect_uris(uri):
    check_registrable(uri)


@pytest.mark.parametrize("uri", [
    "javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "http://app.example.com/cb",
    "https://app.example.com/cb#x", "https://user@app.example.com/cb", "https://app.example.com/a b", "", "https:///cb",
    "http://127.0.0.1:99999/cb",
])
def test_refused_redirect_uris(uri):
    with pytest.raises(RedirectUriError):
        check_registrable(uri)


def test_a_list_needs_one_to_ten_uris():
    with pytest.raises(RedirectUriError):
        check_registrable_list([])
    with pytest.raises(RedirectUriError):
        check_registrable_list([f"https://a.example/{i}" for i in range(11)])
    assert check_registrable_list(["https://a.example/cb", "https://a.example/cb"]) == ["https://a.example/cb"]


def test_matching_is_exact():
    registered = ["https://app.example.com/cb"]
    assert matches("https://app.example.com/cb", registered)
    for other in ("https://app.example.com/cb/", "https://app.example.com/CB", "https://app.example.com/cb?x=1",
                  "https://app.example.com:443/cb", "https://app.example.com/cb#"):
        assert not matches(other, registered)


def test_loopback_ip_literals_may_change_only_the_port():
    registered = ["http://127.0.0.1:8400/cb", "http://[::1]:8400/cb"]
    assert matches("http://127.0.0.1:51234/cb", registered)
    assert matches("http://[::1]:1/cb", registered)
    assert not matches("http://127.0.0.1:51234/other", registered)
    assert not matches("https://127.0.0.1:51234/cb", registered)
    assert not matches("http://127.0.0.2:8400/cb", registered)
    assert not matches("http://localhost:8400/cb", registered)


def test_malformed_requests_never_match():
    assert not matches("http://[::1", ["http://[::1]:8400/cb"])
    assert not matches("http://127.0.0.1:x/cb", ["http://127.0.0.1:8400/cb"])
