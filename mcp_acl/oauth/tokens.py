"""The token endpoint's answer (RFC 6749 §5.1): an RFC 9068 access token,
and for user grants a refresh token from the code's family."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import scope_to_list

from mcp_acl.auth.keys import SigningKeys
from mcp_acl.auth.tokens import mint_access_token
from mcp_acl.oauth.clients import OAuthClient
from mcp_acl.oauth.options import ServerOptions
from mcp_acl.oauth.refresh_tokens import RefreshTokenStore


class TokenIssuer:
    """Mints access tokens and issues refresh tokens for the grants."""

    def __init__(self, keys: SigningKeys, options: ServerOptions, refresh_tokens: RefreshTokenStore) -> None:
        self.keys = keys
        self.options = options
        self.refresh_tokens = refresh_tokens

    def issue(
        self, *, client: OAuthClient, user_name: str | None, scope: str, resource: str, family_id: str | None,
    ) -> dict:
        """The token response; a refresh token only when `family_id` is given (user grants)."""
        ttl = self.options.access_token_ttl
        access_token = mint_access_token(
            self.keys,
            issuer=self.options.issuer,
            audience=resource,
            subject=user_name,  # None: a service token, sub = client_id (RFC 9068 §2.2)
            client_id=client.client_id,
            scopes=scope_to_list(scope),
            ttl=ttl,
        )
        token = {"access_token": access_token, "token_type": "Bearer", "expires_in": int(ttl.total_seconds()), "scope": scope}
        if family_id is not None and user_name is not None:
            token["refresh_token"] = self.refresh_tokens.issue(
                family_id=family_id, client_id=client.client_id, user_name=user_name, scope=scope, resource=resource,
            )
        return token
