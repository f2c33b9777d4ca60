"""OAuth 2.0 Token Revocation, RFC 7009 <https://www.rfc-editor.org/rfc/rfc7009>.

A refresh token is revoked with its whole family, and the access tokens
minted from that family go on the deny-list with it (store/token_ledger.py).
Any other token, an access token included (revoke one with `mcp-acl token
revoke`), gets the 200 that RFC 7009 §2.2 prescribes for tokens the server
does not know, so a client learns nothing from the answer.
"""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from mcp_acl.oauth.clients import AUTH_METHODS


class RevocationEndpoint(_RevocationEndpoint):
    """POST /revoke for the clients of this issuer."""

    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None):
        # The hint is only a hint (RFC 7009 §2.1): a refresh token sent as
        # an "access_token" is still found and revoked. Access tokens are
        # JWTs and cannot be revoked here; they are not found.
        return self.server.refresh_tokens.find(token_string)

    def revoke_token(self, token, request) -> None:
        self.server.refresh_tokens.revoke_family(token.family_id)
