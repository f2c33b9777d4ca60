"""OAuth 2.0 Dynamic Client Registration, RFC 7591
<https://www.rfc-editor.org/rfc/rfc7591>, on Authlib's registration endpoint.

Registration is open, as MCP clients expect: any client may register itself
for the authorization-code flow (public with PKCE, or confidential with a
secret returned once). What a self-registered client can reach is still
only what its signed-in user may reach; `client_credentials` (acting with
no user) is refused here and only `mcp-acl client add --confidential` gives it.

`MCP_ACL_REGISTRATION=off` closes it: /register then refuses every request
(403 access_denied) before reading it, and the metadata stops naming it;
clients registered earlier keep working.
"""

from __future__ import annotations

import time

from authlib.consts import default_json_headers
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint, InvalidClientMetadataError, InvalidRedirectURIError

from mcp_acl.oauth import redirects
from mcp_acl.oauth.clients import AUTH_METHODS, CODE_GRANTS, ClientError, Registration

MAX_NAME_LENGTH = 100
# The answer to every POST /register when MCP_ACL_REGISTRATION=off (routes.py): RFC 7591 §3.2.2's error format.
CLOSED_STATUS = 403
CLOSED_ERROR = {
    "error": "access_denied",
    "error_description": "Dynamic client registration is turned off on this server: ask its administrator to add the client.",
}
# RFC 7591 §2: omitted, the method is client_secret_basic and the grant authorization_code.
_DEFAULT_AUTH_METHOD = "client_secret_basic"


def _description(exc: Exception) -> str:
    # RFC 6749 §5.2: error_description may hold only %x20-21 / %x23-5B / %x5D-7E.
    return "".join(ch if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\' else "?" for ch in str(exc))


def _client_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidClientMetadataError("client_name must be a string.")
    # Shown on the consent page: no control characters, bounded length.
    name = " ".join("".join(ch for ch in value if ch.isprintable()).split())
    return name[:MAX_NAME_LENGTH] or None


class RegistrationEndpoint(ClientRegistrationEndpoint):
    """POST /register: store the client, answer with its id (and secret, once)."""

    def authenticate_token(self, request) -> bool:
        return True  # open registration; see the module docstring

    def get_server_metadata(self) -> dict:
        # What Authlib validates the request against (scopes are narrowed, not refused).
        return {
            "response_types_supported": ["code"],
            "grant_types_supported": list(CODE_GRANTS),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        }

    def create_registration_response(self, request):
        if not isinstance(request.payload.data, dict) or not request.payload.data:
            raise InvalidClientMetadataError("The registration must be a JSON object.")
        try:
            # First, so a bad redirect URI is reported as one (RFC 7591 §3.2.2).
            uris = redirects.check_registrable_list(request.payload.data.get("redirect_uris"))
        except redirects.RedirectUriError as exc:
            raise InvalidRedirectURIError(_description(exc)) from exc
        metadata = self.extract_client_metadata(request)
        auth_method = metadata.get("token_endpoint_auth_method") or _DEFAULT_AUTH_METHOD
        grant_types = tuple(dict.fromkeys(metadata.get("grant_types") or ["authorization_code"]))
        if "authorization_code" not in grant_types:
            raise InvalidClientMetadataError("Only clients of the authorization_code grant can register.")
        scope = self.server.clients.default_scope
        try:
            client, secret = self.server.clients.register_dynamic(
                _client_name(metadata.get("client_name")),
                Registration(auth_method, tuple(uris), grant_types, None),
            )
        except ClientError as exc:
            raise InvalidClientMetadataError(_description(exc)) from exc
        body = {
            "client_id": client.client_id,
            "client_id_issued_at": int(time.time()),
            "client_name": client.name,
            "redirect_uris": list(client.redirect_uris),
            "grant_types": list(client.grant_types),
            "response_types": ["code"],
            "token_endpoint_auth_method": client.auth_method,
            "scope": scope,
        }
        if secret is not None:
            body["client_secret"] = secret
            body["client_secret_expires_at"] = 0  # never
        return 201, {k: v for k, v in body.items() if v is not None}, default_json_headers
