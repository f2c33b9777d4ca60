"""The token endpoint's answer (RFC 6749 §5.1): an RFC 9068 access token,
and for user grants a refresh token from the code's family.

The access token is recorded in the token ledger, and the next refresh
token stored, in one transaction that then checks the user, the client and
the family are not revoked (store/token_ledger.py): a grant revoked after
its code or refresh token was claimed gets invalid_grant, never a token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from authlib.oauth2.rfc6749 import InvalidGrantError, scope_to_list

from mcp_acl.auth.keys import SigningKeys
from mcp_acl.auth.tokens import issued_token, mint_access_token
from mcp_acl.oauth.clients import OAuthClient
from mcp_acl.oauth.options import ServerOptions
from mcp_acl.oauth.refresh_tokens import RefreshTokenStore
from mcp_acl.store.token_ledger import IssueRefused, insert_issued, refuse_if_revoked


class TokenIssuer:
    """Mints access tokens and issues refresh tokens for the grants."""

    def __init__(self, keys: SigningKeys, options: ServerOptions, refresh_tokens: RefreshTokenStore) -> None:
        self.keys = keys
        self.options = options
        self.refresh_tokens = refresh_tokens
        # Called at "signed" (the grant claimed, nothing stored), "recorded"
        # (rows inserted, not checked) and "checked" (not yet committed): the
        # tests revoke there to pin each order of a race.
        self.pause: Callable[[str], None] = lambda stage: None

    def issue(
        self, *, client: OAuthClient, user_name: str | None, scope: str, resource: str, family_id: str | None,
        refresh: bool = True, ttl: timedelta | None = None, extra_claims: dict | None = None,
        parent_jti: str | None = None,
    ) -> dict:
        """The token response; a refresh token only when `family_id` is given (user grants) and `refresh`.

        `ttl` shortens the access token's life (a narrowed token ends with its parent); `extra_claims` are added to it.
        `parent_jti`: the token it is exchanged from, recorded so revoking that one revokes this one (and
        checked, in the same transaction, not to be revoked).
        """
        ttl = min(ttl, self.options.access_token_ttl) if ttl is not None else self.options.access_token_ttl
        access_token = mint_access_token(
            self.keys,
            issuer=self.options.issuer,
            audience=resource,
            subject=user_name,  # None: a service token, sub = client_id (RFC 9068 §2.2)
            client_id=client.client_id,
            scopes=scope_to_list(scope),
            ttl=ttl,
            extra_claims=extra_claims,
        )
        token = {"access_token": access_token, "token_type": "Bearer", "expires_in": int(ttl.total_seconds()), "scope": scope}
        family = family_id if user_name is not None else None
        self.pause("signed")
        try:
            with self.refresh_tokens.engine.begin() as conn:
                insert_issued(conn, issued_token(access_token), family_id=family, parent_jti=parent_jti)
                if family is not None and refresh:
                    token["refresh_token"] = self.refresh_tokens.issue(
                        family_id=family, client_id=client.client_id, user_name=user_name, scope=scope,
                        resource=resource, conn=conn,
                    )
                self.pause("recorded")
                refuse_if_revoked(conn, user=user_name, client=client.client_id, family=family, parent=parent_jti)
                self.pause("checked")
        except IssueRefused as exc:
            # Rolled back: the token was never recorded nor handed out.
            raise InvalidGrantError(f"The grant was revoked: {exc}.") from None
        return token
