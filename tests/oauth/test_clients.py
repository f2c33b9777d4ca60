"""Client registrations in the store and what Authlib asks of them."""

from __future__ import annotations

import pytest

from mcp_acl.oauth.clients import ClientError, ClientRegistry, Registration
from mcp_acl.store import PolicyAdmin


@pytest.fixture
def registry(engine) -> ClientRegistry:
    PolicyAdmin(engine).add_client("plain")
    return ClientRegistry(engine)


def test_a_policy_only_client_is_not_an_oauth_client(registry):
    assert registry.get("plain") is None
    assert Registration.for_admin([], confidential=False) is None


def test_attaching_a_public_registration(engine, registry):
    with engine.begin() as conn:
        secret = registry.attach(conn, "plain", Registration.for_admin(["http://127.0.0.1:9/cb"], confidential=False))
    client = registry.get("plain")
    assert secret is None and client.is_public
    assert client.check_grant_type("authorization_code") and not client.check_grant_type("client_credentials")
    assert client.check_endpoint_auth_method("none", "token")
    assert not client.check_endpoint_auth_method("client_secret_basic", "token")


def test_attaching_a_confidential_registration_returns_a_secret_once(engine, registry):
    with engine.begin() as conn:
        secret = registry.attach(conn, "plain", Registration.for_admin([], confidential=True))
    client = registry.get("plain")
    assert client.check_client_secret(secret) and not client.check_client_secret(secret + "x")
    assert client.grant_types == ("client_credentials",)
    assert not client.check_endpoint_auth_method("none", "token")
    new = registry.new_secret("plain")
    assert new != secret and registry.get("plain").check_client_secret(new)
    assert not registry.get("plain").check_client_secret(secret)


def test_bad_admin_registrations_are_refused(registry):
    with pytest.raises(ClientError):
        Registration.for_admin(["http://app.example.com/cb"], confidential=False)
    with pytest.raises(ClientError):
        Registration("none", (), ("client_credentials",)).validate()


def test_scopes_are_narrowed_to_what_the_client_may_have(registry):
    client, _ = registry.register_dynamic("x", Registration("none", ("http://127.0.0.1:9/cb",), ("authorization_code",)))
    assert client.get_allowed_scope(None) == "mcp"
    assert client.get_allowed_scope("mcp openid") == "mcp"
    assert client.get_allowed_scope("openid") is None


def test_dynamic_registration_does_not_touch_the_policy_revision(engine, registry):
    admin = PolicyAdmin(engine)
    before = admin.revision()
    client, secret = registry.register_dynamic("Bot", Registration("client_secret_basic", ("https://a.example/cb",), ("authorization_code",)))
    assert admin.revision() == before
    assert client.registered_via == "dynamic" and not client.restricted and secret
