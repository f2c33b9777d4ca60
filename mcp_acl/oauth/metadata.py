"""OAuth 2.0 Authorization Server Metadata, RFC 8414
<https://www.rfc-editor.org/rfc/rfc8414>.

Served at `/.well-known/oauth-authorization-server` (and, with the same
content, at the OpenID discovery path that some clients try first); for an
issuer with a path, the path goes after the well-known part (RFC 8414 §3.1).
"""

from __future__ import annotations

from authlib.oauth2.rfc8414 import get_well_known_url

from mcp_acl.auth.metadata import JWKS_PATH
from mcp_acl.oauth.clients import AUTH_METHODS
from mcp_acl.oauth.exchange import AUTHORIZATION_DETAILS_TYPES, TOKEN_EXCHANGE
from mcp_acl.oauth.options import ServerOptions

AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/token"
REGISTER_PATH = "/register"
REVOKE_PATH = "/revoke"
SUFFIXES = ("oauth-authorization-server", "openid-configuration")


def metadata_paths(options: ServerOptions) -> list[str]:
    """The paths the metadata document is served at.

    Example: issuer http://127.0.0.1:8000 -> ["/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration"]
    """
    paths = [get_well_known_url(options.issuer, suffix=suffix) for suffix in SUFFIXES]
    if options.path:
        # OpenID Connect Discovery 1.0 §4 appends instead: {issuer}/.well-known/openid-configuration.
        paths.append(f"{options.path}/.well-known/openid-configuration")
    return paths


def server_metadata(options: ServerOptions) -> dict:
    """The RFC 8414 §2 document of the embedded issuer (what an administrator turned off is left out)."""
    document = {
        "issuer": options.issuer,
        "authorization_endpoint": options.url(AUTHORIZE_PATH),
        "token_endpoint": options.url(TOKEN_PATH),
        "registration_endpoint": options.url(REGISTER_PATH),
        "revocation_endpoint": options.url(REVOKE_PATH),
        "jwks_uri": options.origin + JWKS_PATH,
        "scopes_supported": [options.scope],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", TOKEN_EXCHANGE],
        # RFC 9396 §10: the token exchange for a narrowed token takes these (oauth/exchange.py).
        "authorization_details_types_supported": AUTHORIZATION_DETAILS_TYPES,
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        # RFC 9207: the authorization response carries `iss`, against mix-up attacks.
        "authorization_response_iss_parameter_supported": True,
        # An https client_id naming the client's own metadata document (oauth/cimd.py).
        "client_id_metadata_document_supported": True,
    }
    if not options.registration:
        del document["registration_endpoint"]
    if not options.document_admission.enabled:
        # Still advertised with an allow-list: documents are supported, from those hosts.
        del document["client_id_metadata_document_supported"]
    return document
