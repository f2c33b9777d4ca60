"""Authentication: access-token verification (resource server) and the embedded issuer's keys.

See docs/auth.md. The pieces, each named after the standard it implements:
keys (RFC 7517 JWKs in the database), tokens (RFC 9068 minting), compact
and verifier (RFC 7515/9068 validation), jwks and discovery (key sets,
RFC 8414), identity (claims to Identity), middleware (RFC 6750 bearer),
metadata (RFC 9728), setup (choosing the verifier from the settings).
"""

from mcp_acl.auth.errors import AuthConfigError, KeysUnavailable, SigningError
from mcp_acl.auth.identity import identity_from_claims
from mcp_acl.auth.keys import SigningKeys
from mcp_acl.auth.metadata import auth_routes, resource_metadata_url
from mcp_acl.auth.middleware import IDENTITY_KEY, protect
from mcp_acl.auth.setup import build_verifier
from mcp_acl.auth.tokens import mint_access_token
from mcp_acl.auth.verifier import AccessTokenVerifier, TokenRejected, VerifiedToken

__all__ = [
    "IDENTITY_KEY",
    "AccessTokenVerifier",
    "AuthConfigError",
    "KeysUnavailable",
    "SigningError",
    "SigningKeys",
    "TokenRejected",
    "VerifiedToken",
    "auth_routes",
    "build_verifier",
    "identity_from_claims",
    "mint_access_token",
    "protect",
    "resource_metadata_url",
]
