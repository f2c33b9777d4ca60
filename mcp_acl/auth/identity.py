"""From verified claims to an Identity, the policy core's view of the caller.

The mapping, claim by claim:

- issuer: `iss`.
- client: `client_id` (RFC 9068), else `azp` (OpenID Connect's authorized party).
- subject: `sub`, except for a service token (a client acting for itself,
  no user), whose subject is None. A token is a service token when
    * its `sub` equals its client id (RFC 9068 §2.2 puts the client id in
      `sub` for client credentials; the embedded issuer does this), or
    * it has no `sub` at all, or
    * it is an Auth0 client-credentials token (`gty: client-credentials`
      and `sub` = `<client id>@clients`).
- scopes: `scope` (space-separated string, or a list), else `scp` (Okta, Entra).
- roles: the claim `settings.roles_claim` names: a top-level claim of that
  exact name (Auth0's namespaced `https://example.com/roles`), else a dotted
  path (Keycloak's `realm_access.roles`). A list of strings or one
  space-separated string; other values are ignored.
- narrowing: the `authorization_details` objects of type
  `mcp-acl-narrowing` (RFC 9396; policy/narrowing.py), which a narrowed
  token carries; a malformed one narrows the token to nothing.
"""

from __future__ import annotations

from mcp_acl.config import Settings
from mcp_acl.policy import Identity
from mcp_acl.policy.narrowing import narrowing_from_claim


def string_values(value: object) -> frozenset[str]:
    """The strings in a claim value: a list's string items, or a string split on spaces.

    Example: ["a", 3, "b"] -> {"a", "b"}; "a b" -> {"a", "b"}; {"a": 1} -> {}
    """
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str) and v)
    return frozenset()


def client_id_of(claims: dict) -> object:
    """The client the token names: `client_id` (RFC 9068), else `azp` (not yet checked to be text)."""
    return claims.get("client_id", claims.get("azp"))


def scopes_from_claims(claims: dict) -> frozenset[str]:
    """The token's scopes: `scope`, else `scp`."""
    return string_values(claims["scope"] if "scope" in claims else claims.get("scp"))


def claim_at_path(claims: dict, path: str) -> object:
    """The claim `path` names: a top-level claim of exactly that name, else a dotted path.

    Example: "realm_access.roles" in {"realm_access": {"roles": ["a"]}} -> ["a"]
    """
    if path in claims:
        return claims[path]
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def is_service_token(claims: dict) -> bool:
    """True when the token speaks for a client alone (see the module's rule)."""
    subject = claims.get("sub")
    client_id = client_id_of(claims)
    if not subject:
        return True
    if subject == client_id:
        return True
    return claims.get("gty") == "client-credentials" and subject == f"{client_id}@clients"


def identity_from_claims(claims: dict, settings: Settings) -> Identity:
    """The Identity a verified token's claims describe."""
    client_id = client_id_of(claims)
    subject = claims.get("sub")
    roles = string_values(claim_at_path(claims, settings.roles_claim)) if settings.roles_claim else frozenset()
    return Identity(
        subject=subject if isinstance(subject, str) and not is_service_token(claims) else None,
        client_id=client_id if isinstance(client_id, str) and client_id else None,
        roles=roles,
        issuer=claims.get("iss"),
        scopes=scopes_from_claims(claims),
        narrowing=narrowing_from_claim(claims.get("authorization_details")),
    )
