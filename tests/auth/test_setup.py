"""Choosing the verifier from the settings."""

from __future__ import annotations

import pytest

from mcp_acl.auth import AuthConfigError, SigningKeys, build_verifier
from mcp_acl.config import Settings


def test_embedded_issuer_verifier_checks_the_resource_origin_as_issuer_and_makes_a_key(engine):
    verifier = build_verifier(Settings(database_url="x", resource_url="http://127.0.0.1:8123/mcp"), engine)
    assert (verifier.issuer, verifier.audience) == ("http://127.0.0.1:8123", "http://127.0.0.1:8123/mcp")
    assert verifier.token_types == frozenset({"at+jwt"})
    assert [k.state for k in SigningKeys(engine).inventory()] == ["active"]


def test_embedded_issuer_url_setting_overrides_the_origin(engine):
    settings = Settings(database_url="x", issuer_url="https://acl.example")
    assert build_verifier(settings, engine).issuer == "https://acl.example"


def test_embedded_issuer_ignores_configured_external_token_types(engine):
    settings = Settings(database_url="x", token_types=("at+jwt", "jwt"))
    assert build_verifier(settings, engine).token_types == frozenset({"at+jwt"})


def test_external_issuer_verifier_uses_the_configured_issuer_and_types(engine):
    settings = Settings(database_url="x", issuer="https://idp.example/", token_types=("at+jwt", "JWT"))
    verifier = build_verifier(settings, engine)
    assert verifier.issuer == "https://idp.example/"
    assert verifier.token_types == frozenset({"at+jwt", "jwt"})
    assert SigningKeys(engine).inventory() == []


def test_jwks_url_without_an_issuer_is_a_configuration_error(engine):
    with pytest.raises(AuthConfigError, match="MCP_ACL_ISSUER"):
        build_verifier(Settings(database_url="x", jwks_url="https://idp.example/keys"), engine)


def test_settings_read_the_auth_variables(monkeypatch):
    monkeypatch.setenv("MCP_ACL_ISSUER_URL", "https://acl.example")
    monkeypatch.setenv("MCP_ACL_TOKEN_TYPES", "at+jwt, JWT")
    monkeypatch.setenv("MCP_ACL_CLOCK_LEEWAY", "10")
    settings = Settings.from_env()
    assert (settings.embedded_issuer_url, settings.token_types, settings.clock_leeway) == (
        "https://acl.example",
        ("at+jwt", "JWT"),
        10,
    )
    assert settings.embedded_issuer and settings.expected_issuer == "https://acl.example"


def test_a_non_numeric_leeway_is_refused(monkeypatch):
    monkeypatch.setenv("MCP_ACL_CLOCK_LEEWAY", "soon")
    with pytest.raises(ValueError, match="MCP_ACL_CLOCK_LEEWAY"):
        Settings.from_env()
