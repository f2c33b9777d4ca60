"""Authentication: access-token verification (resource server) and the embedded issuer's keys.

See docs/auth.md. The pieces, each named after the standard it implements:
keys (RFC 7517 JWKs in the database), tokens (RFC 9068 minting), compact
and verifier (RFC 7515/9068 validation), jwks and discovery (key sets,
RFC 8414), identity (claims to Identity), middleware (RFC 6750 bearer),
metadata (RFC 9728), setup (choosing the verifier from the settings).

The names below load their modules on first use (PEP 562): the middleware
pulls in the MCP SDK and Starlette, which admin commands such as `mcp-acl
revoke` never need, so importing `mcp_acl.auth.keys` must not load them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_acl.auth.errors import AuthConfigError, KeysUnavailable, SigningError
    from mcp_acl.auth.identity import identity_from_claims
    from mcp_acl.auth.keys import SigningKeys
    from mcp_acl.auth.metadata import auth_routes, resource_metadata_url
    from mcp_acl.auth.middleware import IDENTITY_KEY, protect
    from mcp_acl.auth.setup import build_verifier
    from mcp_acl.auth.tokens import mint_access_token
    from mcp_acl.auth.verifier import AccessTokenVerifier, TokenRejected, VerifiedToken

_EXPORTS = {
    "mcp_acl.auth.errors": ("AuthConfigError", "KeysUnavailable", "SigningError"),
    "mcp_acl.auth.identity": ("identity_from_claims",),
    "mcp_acl.auth.keys": ("SigningKeys",),
    "mcp_acl.auth.metadata": ("auth_routes", "resource_metadata_url"),
    "mcp_acl.auth.middleware": ("IDENTITY_KEY", "protect"),
    "mcp_acl.auth.setup": ("build_verifier",),
    "mcp_acl.auth.tokens": ("mint_access_token",),
    "mcp_acl.auth.verifier": ("AccessTokenVerifier", "TokenRejected", "VerifiedToken"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'mcp_acl.auth' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)


__all__ = sorted(_HOME)
