"""From claims to an Identity: subject, client, service tokens, scopes, roles."""

from __future__ import annotations

import pytest

from mcp_acl.auth import identity_from_claims
from mcp_acl.auth.identity import claim_at_path, is_service_token, string_values
from mcp_acl.config import Settings

ISSUER = "https://idp.example"


def settings(roles_claim: str | None = None) -> Settings:
    return Settings(database_url="sqlite://", roles_claim=roles_claim)


def test_user_token_maps_to_subject_client_issuer_and_scopes():
    claims = {"iss": ISSUER, "sub": "alice", "client_id": "agent", "scope": "mcp files"}
    identity = identity_from_claims(claims, settings())
    assert (identity.subject, identity.client_id, identity.issuer) == ("alice", "agent", ISSUER)
    assert identity.scopes == frozenset({"mcp", "files"})
    assert not identity.is_service


def test_azp_names_the_client_when_client_id_is_absent():
    assert identity_from_claims({"sub": "alice", "azp": "inspector"}, settings()).client_id == "inspector"


def test_sub_equal_to_client_id_is_a_service_identity():
    identity = identity_from_claims({"iss": ISSUER, "sub": "ollama-agent", "client_id": "ollama-agent"}, settings())
    assert identity.is_service and identity.client_id == "ollama-agent"


def test_token_without_sub_is_a_service_identity():
    assert identity_from_claims({"client_id": "batch"}, settings()).is_service


def test_auth0_client_credentials_token_is_a_service_identity():
    claims = {"sub": "abc123@clients", "azp": "abc123", "gty": "client-credentials"}
    assert is_service_token(claims)
    assert identity_from_claims(claims, settings()).client_id == "abc123"


def test_sub_ending_in_clients_without_the_grant_type_stays_a_user():
    assert not is_service_token({"sub": "abc123@clients", "azp": "abc123"})


def test_keycloak_realm_roles_map_through_a_dotted_path():
    claims = {"sub": "alice", "azp": "mcp", "realm_access": {"roles": ["analyst", "offline_access"]}}
    assert identity_from_claims(claims, settings("realm_access.roles")).roles == frozenset({"analyst", "offline_access"})


def test_auth0_namespaced_roles_claim_is_read_whole_despite_its_dots():
    claims = {"sub": "alice", "https://mcp.example.com/roles": ["analyst"]}
    assert identity_from_claims(claims, settings("https://mcp.example.com/roles")).roles == frozenset({"analyst"})


def test_space_separated_roles_string_is_split():
    assert identity_from_claims({"sub": "alice", "groups": "a b"}, settings("groups")).roles == frozenset({"a", "b"})


def test_no_roles_claim_setting_maps_no_roles():
    assert identity_from_claims({"sub": "alice", "groups": ["a"]}, settings()).roles == frozenset()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["a", 3, None, {"x": 1}, "", "b"], {"a", "b"}), ("a  b", {"a", "b"}), ({"a": 1}, set()), (None, set()), (5, set())],
)
def test_only_string_values_become_roles(value, expected):
    assert string_values(value) == frozenset(expected)


def test_missing_path_gives_nothing():
    assert claim_at_path({"realm_access": ["not", "a", "dict"]}, "realm_access.roles") is None


def test_scp_is_read_when_scope_is_absent():
    assert identity_from_claims({"sub": "alice", "scp": ["mcp"]}, settings()).scopes == frozenset({"mcp"})
