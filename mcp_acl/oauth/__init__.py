"""The embedded OAuth 2.1 authorization server (on by default; off when
`MCP_ACL_ISSUER` names an external identity provider). See docs/oauth.md.

Each module is named after what it implements:

- metadata: RFC 8414 authorization server metadata;
- signin, pages, signin_requests, passwords: the authorization endpoint's
  browser sign-in and consent (RFC 6749 §4.1); signin_limits: the failed
  sign-in back-off per account and address;
- grants: authorization code, refresh token, client credentials (RFC 6749);
  exchange: token exchange (RFC 8693) for a narrowed token (RFC 9396 details);
- pkce: RFC 7636 (S256 only); resource: RFC 8707 resource indicators;
- codes, refresh_tokens: single-use codes and rotating refresh-token families;
- tokens: RFC 9068 access tokens (minted by mcp_acl.auth.tokens);
- registration: RFC 7591 dynamic client registration; revocation: RFC 7009;
- clients, redirects: client records and redirect URI rules (RFC 8252);
- server, adapter: Authlib's AuthorizationServer on Starlette;
- routes: `oauth_routes(settings, engine, keys, ...)` for create_app.

`oauth_routes` loads on first use (PEP 562): the routes pull in Starlette,
Authlib and the MCP SDK, which `mcp-acl client add` (using only `clients`)
does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_acl.oauth.routes import oauth_routes


def __getattr__(name: str) -> Any:
    if name == "oauth_routes":
        from mcp_acl.oauth.routes import oauth_routes

        return oauth_routes
    raise AttributeError(f"module 'mcp_acl.oauth' has no attribute {name!r}")


__all__ = ["oauth_routes"]
