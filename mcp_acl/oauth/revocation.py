"""OAuth 2.0 Token Revocation, RFC 7009 <https://www.rfc-editor.org/rfc/rfc7009>.

A refresh token is revoked with its whole family (the access tokens minted
from it are self-contained JWTs and stay valid until they expire, at most
the access-token lifetime). Any other token gets the 200 that RFC 7009 §2.2
prescribes for tokens the server does not know, so a client learns nothing
from the answer.
"""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint


class RevocationEndpoint(_RevocationEndpoint):
    """POST /revoke for the clients of this issuer."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None):
        if token_type_hint == "access_token":
            return None
        return self.server.refresh_tokens.find(token_string)

    def revoke_token(self, token, request) -> None:
        self.server.refresh_tokens.revoke_family(token.family_id)
