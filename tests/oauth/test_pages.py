"""The sign-in pages' form targets."""

from __future__ import annotations

from mcp_acl.oauth.pages import redirect_target


def test_redirect_targets_for_the_consent_form():
    assert redirect_target("http://127.0.0.1:33418/cb") == "http://127.0.0.1:33418"
    assert redirect_target("https://vscode.dev/redirect") == "https://vscode.dev"
    assert redirect_target("cursor://anysphere.cursor-retrieval/cb") == "cursor:"
    assert redirect_target("https://a.example;script-src */cb") is None
