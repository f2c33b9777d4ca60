"""Authlib's AuthorizationServer, wired to Starlette and to mcp-acl's store.

Authlib ships server integrations for Flask and Django only; this is the
small Starlette one: requests come in as `HttpRequestData` (adapter.py),
responses go out as Starlette `Response`s, and clients, codes and tokens
live in the SQL store.
"""

from __future__ import annotations

import json

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidClientError, OAuth2Request
from sqlalchemy import Engine
from starlette.responses import Response

from mcp_acl.auth.keys import SigningKeys
from mcp_acl.oauth.adapter import HttpRequestData, StarletteJsonRequest, StarletteOAuth2Request
from mcp_acl.oauth.cimd import MetadataDocumentError, MetadataDocuments
from mcp_acl.oauth.clients import ClientRegistry, OAuthClient
from mcp_acl.oauth.codes import CodeStore
from mcp_acl.oauth.exchange import TokenExchangeGrant
from mcp_acl.oauth.grants import AuthorizationCodeGrant, ClientCredentialsGrant, RefreshTokenGrant
from mcp_acl.oauth.options import ServerOptions
from mcp_acl.oauth.refresh_tokens import RefreshTokenStore
from mcp_acl.oauth.registration import RegistrationEndpoint
from mcp_acl.oauth.revocation import RevocationEndpoint
from mcp_acl.oauth.tokens import TokenIssuer


def _printable(text: str) -> str:
    # RFC 6749 §5.2: an error_description is printable ASCII without " and \ (a URL quoted in it may not be).
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


class EmbeddedAuthorizationServer(AuthorizationServer):
    """mcp-acl's own OAuth 2.1 authorization server."""

    def __init__(self, engine: Engine, keys: SigningKeys, options: ServerOptions) -> None:
        super().__init__(scopes_supported=[options.scope])
        self.engine = engine
        self.options = options
        self.clients = ClientRegistry(
            engine, default_scope=options.scope, documents=MetadataDocuments(options.metadata_documents),
            admission=options.document_admission,
        )
        self.refresh_tokens = RefreshTokenStore(engine, ttl=options.refresh_token_ttl)
        self.codes = CodeStore(engine, self.refresh_tokens, ttl=options.code_ttl)
        self.tokens = TokenIssuer(keys, options, self.refresh_tokens)
        self.register_grant(AuthorizationCodeGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(TokenExchangeGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(RegistrationEndpoint)

    def query_client(self, client_id: str) -> OAuthClient | None:
        try:
            return self.clients.resolve(client_id)
        except MetadataDocumentError as exc:
            # Said at /authorize on the error page (the redirect URI is not trusted yet), at /token as invalid_client.
            raise InvalidClientError(description=_printable(str(exc))) from None

    def save_token(self, token: dict, request) -> None:
        # Both were stored when issued (TokenIssuer): the access token's jti in the ledger, the refresh token's digest.
        pass

    def validate_requested_scope(self, scope: str | None) -> None:
        # Scopes are narrowed per client (OAuthClient.get_allowed_scope), not refused here.
        pass

    def send_signal(self, name: str, *args, **kwargs) -> None:
        pass

    def create_oauth2_request(self, request: HttpRequestData | OAuth2Request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return StarletteOAuth2Request(request)

    def create_json_request(self, request: HttpRequestData) -> StarletteJsonRequest:
        return StarletteJsonRequest(request)

    def handle_response(self, status: int, body, headers) -> Response:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        return Response(body, status_code=status, headers=dict(headers))
