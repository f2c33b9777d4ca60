"""Bearer tokens on the MCP endpoint (RFC 6750), refusals pointing at RFC 9728 metadata.

https://www.rfc-editor.org/rfc/rfc6750, https://www.rfc-editor.org/rfc/rfc9728#section-5.1

- The token is read from the Authorization header only (RFC 6750 §2.1). A
  token in the query string (`access_token=`, §2.3) or a form-encoded body
  (§2.2) is refused with 400 invalid_request and never used.
- No token, or a bad one: 401 with `WWW-Authenticate: Bearer
  error="invalid_token", error_description="…", scope="mcp",
  resource_metadata="…"`; a token without the required scope: 403
  `error="insufficient_scope"`. The wrapped app is not reached.
- A revoked token (its `jti` on the deny-list, see gateway/revoked.py): 401
  `error="invalid_token"` saying so; if the deny-list cannot be read, 503
  with `Retry-After` (never let through).
- A good token: the app sees `scope["user"]` (the SDK's AuthenticatedUser),
  `scope["auth"]`, `scope["mcp_acl.identity"]` (an Identity),
  `scope["mcp_acl.token_id"]` (its jti, or None), and the SDK's
  `get_access_token()` works inside handlers (its `token` is a placeholder:
  the caller's token is kept apart, in auth/caller_token.py, for an
  upstream's token exchange only).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_acl.auth import caller_token
from mcp_acl.auth.compact import MalformedToken, decode_json_object
from mcp_acl.auth.identity import client_id_of, identity_from_claims
from mcp_acl.auth.metadata import resource_metadata_url
from mcp_acl.auth.verifier import AccessTokenVerifier, TokenRejected, VerifiedToken, invalid_token
from mcp_acl.config import Settings
from mcp_acl.observe.tracing import span
from mcp_acl.policy import Identity
from mcp_acl.printable import printable
from mcp_acl.store.personal_tokens import looks_personal

logger = logging.getLogger(__name__)

IDENTITY_KEY = "mcp_acl.identity"
TOKEN_ID_KEY = "mcp_acl.token_id"
RefusalHook = Callable[[str, dict], None]
# Answers whether a jti is revoked; raises when it cannot tell.
RevokedCheck = Callable[[str], Awaitable[bool]]
REVOKED = "the access token was revoked; sign in again"
UNCHECKABLE = "the access token could not be checked against the revocation list; try again shortly"
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
_NOT_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def protect(
    app: ASGIApp,
    verifier: AccessTokenVerifier,
    settings: Settings,
    on_refused: RefusalHook | None = None,
    revoked: RevokedCheck | None = None,
) -> ASGIApp:
    """`app` behind bearer-token verification; `on_refused(reason, info)` hears of each refusal; `revoked(jti)` is the deny-list."""
    return BearerGuard(app, verifier, settings, on_refused, revoked)


def bearer_token(scope: Scope) -> str:
    """The token of the request's one `Authorization: Bearer` header, else TokenRejected."""
    query_string = scope.get("query_string", b"")
    if query_string and "access_token" in parse_qs(query_string.decode("latin-1"), keep_blank_values=True):
        raise TokenRejected(400, "invalid_request", "access tokens are accepted only in the Authorization header, not in the URL")
    content_type = b""
    values = []
    for key, value in scope.get("headers", ()):
        key = key.lower()
        if key == b"authorization":
            values.append(value)
        elif key == b"content-type" and not content_type:
            content_type = value
    if content_type.lower().startswith(b"application/x-www-form-urlencoded"):
        raise TokenRejected(400, "invalid_request", "form bodies are not accepted here; send the token in the Authorization header")
    if len(values) > 1:
        raise TokenRejected(400, "invalid_request", "send exactly one Authorization header")
    if not values:
        raise invalid_token("no access token: send Authorization: Bearer <token>")
    scheme, _, token = values[0].decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not _B64TOKEN.fullmatch(token):
        raise invalid_token("the Authorization header does not hold a Bearer token")
    return token


def unverified_names(scope: Scope) -> dict:
    """`iss`, `sub` and `client_id` as a refused request's token claims them (unverified), for audit."""
    values = [v for k, v in scope.get("headers", []) if k.lower() == b"authorization"]
    token = values[0].decode("latin-1").partition(" ")[2] if len(values) == 1 else ""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = decode_json_object(parts[1], "not a JSON object")
    except MalformedToken:
        return {}
    names = {"iss": claims.get("iss"), "sub": claims.get("sub"), "client_id": client_id_of(claims)}
    return {k: v[:255] for k, v in names.items() if isinstance(v, str)}


class BearerGuard:
    """The ASGI wrapper `protect` returns."""

    def __init__(
        self, app: ASGIApp, verifier: AccessTokenVerifier, settings: Settings, on_refused: RefusalHook | None,
        revoked: RevokedCheck | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.settings = settings
        self.on_refused = on_refused
        self.revoked = revoked
        self.metadata_url = resource_metadata_url(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            token = bearer_token(scope)
            with span("mcp_acl.token.verify"):
                verified = await self.verifier.verify(token)
            jti = await self._not_revoked(verified)
        except TokenRejected as refusal:
            await self._refuse(scope, send, refusal)
            return
        credentials, identity = self._derive(verified)
        # Handlers see the token's claims but not the token: only an upstream's
        # token exchange reads it, from its own context variable (caller_token).
        user = AuthenticatedUser(self.verifier.access_token(caller_token.WITHHELD, verified))
        inner = {**scope, "user": user, "auth": credentials, IDENTITY_KEY: identity, TOKEN_ID_KEY: jti}
        # As the SDK's AuthContextMiddleware does: handlers call get_access_token().
        context = auth_context_var.set(user)
        # A personal token is ours alone: no other token endpoint may ever see it.
        held = None if looks_personal(token) else caller_token.bind(caller_token.CallerToken(token, verified.expires_at.timestamp()))
        try:
            await self.app(inner, receive, send)
        finally:
            if held is not None:
                caller_token.unbind(held)
            auth_context_var.reset(context)

    async def _not_revoked(self, verified: VerifiedToken) -> str | None:
        # On every request, never cached: a revocation counts from its commit.
        jti = verified.claims.get("jti")
        if not isinstance(jti, str) or not jti:
            return None
        if self.revoked is None:
            return jti
        try:
            revoked = await self.revoked(jti)
        except Exception as exc:
            logger.warning("refusing a request: the token deny-list could not be read (%s)", exc.__class__.__name__)
            refusal = TokenRejected(503, "temporarily_unavailable", UNCHECKABLE)
        else:
            if not revoked:
                return jti
            refusal = invalid_token(REVOKED)
        refusal.signed = True
        raise refusal

    def _derive(self, verified: VerifiedToken) -> tuple[AuthCredentials, Identity]:
        # Once per verified token (its memo lives as long as the verifier caches it).
        derived = verified.memo.get(self)
        if derived is None:
            derived = (AuthCredentials(sorted(verified.scopes)), identity_from_claims(verified.claims, self.settings))
            verified.memo[self] = derived
        return derived

    def www_authenticate(self, refusal: TokenRejected) -> str:
        """The `WWW-Authenticate` value for a refusal (RFC 6750 §3, RFC 9728 §5.1)."""
        description = _NOT_DESCRIPTION.sub("", refusal.description)
        params = [f'error="{refusal.error}"', f'error_description="{description}"']
        if refusal.error != "invalid_request":
            params.append(f'scope="{self.settings.required_scope}"')
        params.append(f'resource_metadata="{self.metadata_url}"')
        return "Bearer " + ", ".join(params)

    async def _refuse(self, scope: Scope, send: Send, refusal: TokenRejected) -> None:
        client = scope.get("client")
        info = {
            "remote_addr": client[0] if client else None,
            "path": scope.get("path"),
            "status": refusal.status,
            "error": refusal.error,
            "signed": refusal.signed,
            **unverified_names(scope),
        }
        # The path is percent-decoded (%0A is a newline): escaped, so a request cannot forge log lines.
        logger.info("refused %s %s: %s", printable(info["path"]), refusal.status, printable(refusal.description))
        if self.on_refused is not None:
            try:
                self.on_refused(refusal.description, info)
            except Exception:
                # The refusal stands whatever the hook does.
                logger.exception("the on_refused hook failed")
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": refusal.error, "error_description": refusal.description}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        if refusal.status == 503:
            # Not the token's fault: no challenge, so the client keeps its token and retries.
            headers.append((b"retry-after", b"1"))
        else:
            headers.append((b"www-authenticate", self.www_authenticate(refusal).encode()))
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
