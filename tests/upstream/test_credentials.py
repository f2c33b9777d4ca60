"""Credential references resolve at connect time; a missing one names the reference, never a value."""

from __future__ import annotations

import pytest

from mcp_acl.upstream.credentials import MissingCredential, resolve, resolve_all


def test_env_and_file_references_resolve(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_UPSTREAM_TOKEN", "Bearer abc")
    secret = tmp_path / "key"
    secret.write_text("from-a-file\n")
    assert resolve_all({"Authorization": "env:TEST_UPSTREAM_TOKEN", "X-Key": f"file:{secret}"}) == {
        "Authorization": "Bearer abc", "X-Key": "from-a-file",
    }


def test_a_missing_reference_says_which(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_UPSTREAM_MISSING", raising=False)
    with pytest.raises(MissingCredential, match="the environment variable TEST_UPSTREAM_MISSING is not set"):
        resolve("env:TEST_UPSTREAM_MISSING")
    with pytest.raises(MissingCredential, match=f"the file {tmp_path}/nope cannot be read"):
        resolve(f"file:{tmp_path}/nope")
