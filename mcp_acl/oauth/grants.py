"""The three grants the embedded issuer offers, on Authlib's RFC 6749 grants.

- authorization code (RFC 6749 §4.1) with PKCE S256 for every client
  (pkce.py) and a resource indicator (resource.py);
- refresh token (RFC 6749 §6), rotated on every use (refresh_tokens.py);
- client credentials (RFC 6749 §4.4) for confidential service clients: the
  token's `sub` is the client id and there is no user.

Each grant's extra checks run at one visible place, after Authlib's own,
rather than as Authlib hooks (a set, so in no fixed order).
"""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidScopeError, OAuth2Error, grants
from sqlalchemy import select

from mcp_acl.oauth import pkce
from mcp_acl.oauth._digest import new_token
from mcp_acl.oauth.clients import AUTH_METHODS, SECRET_METHODS
from mcp_acl.oauth.resource import requested_resource
from mcp_acl.store import tables as t

_WITH_SECRET_OR_PKCE = list(AUTH_METHODS)


@dataclass(frozen=True)
class SignedInUser:
    """The user an authorization code or refresh token was issued to."""

    name: str

    def get_user_id(self) -> str:
        return self.name


def active_user(server, name: str) -> SignedInUser:
    """The user `name` if it still exists and is enabled; else invalid_grant."""
    with server.engine.connect() as conn:
        row = conn.execute(select(t.users.c.disabled).where(t.users.c.name == name)).first()
    if row is None or row.disabled:
        raise InvalidGrantError("The user of this grant is disabled or gone.")
    return SignedInUser(name)


def _issue_for_user(grant, bound, user: SignedInUser, scope: str, with_refresh: bool) -> dict:
    # `bound` is the code or refresh token the grant used: it fixes the
    # resource and the refresh-token family.
    return grant.server.tokens.issue(
        client=grant.client, user_name=user.name, scope=scope, resource=bound.resource,
        family_id=bound.family_id, refresh=with_refresh,
    )


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """Authorization code with PKCE (S256) and RFC 8707 resource binding."""

    TOKEN_ENDPOINT_AUTH_METHODS = _WITH_SECRET_OR_PKCE

    def validate_authorization_request(self) -> str:
        redirect_uri = super().validate_authorization_request()
        try:
            pkce.require_challenge(self.request)
            requested_resource(self.request, self.server.options.resource)
        except OAuth2Error as error:
            # The redirect URI is verified by now, so the client hears of it.
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    def generate_authorization_code(self) -> str:
        return new_token()

    def save_authorization_code(self, code: str, request) -> None:
        challenge, method = pkce.require_challenge(request)
        self.server.codes.save(
            code,
            client_id=request.client.get_client_id(),
            user_name=request.user.name,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            resource=requested_resource(request, self.server.options.resource),
            code_challenge=challenge,
            code_challenge_method=method,
        )

    def query_authorization_code(self, code: str, client):
        return self.server.codes.consume(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code) -> None:
        pass  # consumed atomically by query_authorization_code

    def validate_token_request(self) -> None:
        super().validate_token_request()
        code = self.request.authorization_code
        pkce.check_verifier(self.request, code.code_challenge, code.code_challenge_method)
        requested_resource(self.request, self.server.options.resource, bound=code.resource)

    def authenticate_user(self, authorization_code) -> SignedInUser:
        return active_user(self.server, authorization_code.user_name)

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True) -> dict:
        return _issue_for_user(self, self.request.authorization_code, user, scope, include_refresh_token)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Refresh with rotation: every use returns a new refresh token of the same family."""

    TOKEN_ENDPOINT_AUTH_METHODS = _WITH_SECRET_OR_PKCE
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str):
        # request.client is set by now: a token held by another client is a leak.
        return self.server.refresh_tokens.use(refresh_token, self.request.client.get_client_id())

    def validate_token_request(self) -> None:
        super().validate_token_request()
        requested_resource(self.request, self.server.options.resource, bound=self.request.refresh_token.resource)

    def authenticate_user(self, refresh_token) -> SignedInUser:
        return active_user(self.server, refresh_token.user_name)

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True) -> dict:
        return _issue_for_user(self, self.request.refresh_token, user, scope, include_refresh_token)

    def revoke_old_credential(self, refresh_token) -> None:
        pass  # used up atomically by authenticate_refresh_token


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """A service token for a confidential client: sub = client_id, no user."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(SECRET_METHODS)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        if self.client.get_allowed_scope(self.request.payload.scope) is None:
            raise InvalidScopeError()
        requested_resource(self.request, self.server.options.resource)

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True) -> dict:
        return self.server.tokens.issue(
            client=self.client, user_name=None, scope=self.client.get_allowed_scope(scope),
            resource=requested_resource(self.request, self.server.options.resource), family_id=None,
        )
