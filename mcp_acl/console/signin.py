"""Signing in to the console: an OAuth client of the embedded authorization server (or an external one).

With the embedded issuer the console is the registered public client
`mcp-acl-console` (authorization code + PKCE S256, redirect to
/admin/callback). The browser signs in on the issuer's own pages; the code
comes back here and is exchanged in-process at the issuer's token endpoint.
With an external provider (external.py) the same flow runs against its
endpoints. Either way the access token is verified by the same verifier as
every MCP request. Then the policy decides `admin:console` for
that identity, and the sign-in is audited, allowed or not. The token itself
is dropped: the browser only ever holds the signed session cookie, with
the token's `jti` (for the deny-list) and expiry, never the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_acl.auth.identity import identity_from_claims
from mcp_acl.auth.setup import build_verifier
from mcp_acl.console.context import CONSOLE_CLIENT, SECURITY_HEADERS, Console
from mcp_acl.console.cookies import SIGN_IN_LIFETIME, ConsoleSession
from mcp_acl.console.external import CLIENT_ID_ENV, ExternalProvider, ProviderError
from mcp_acl.console.guard import audit_admin, decide_admin, read_session
from mcp_acl.oauth.adapter import HttpRequestData
from mcp_acl.oauth import redirects
from mcp_acl.oauth.clients import CODE_GRANTS, PUBLIC, ClientRegistry, Registration
from mcp_acl.oauth.metadata import AUTHORIZE_PATH, TOKEN_PATH
from mcp_acl.oauth.routes import options_from
from mcp_acl.oauth.server import EmbeddedAuthorizationServer
from mcp_acl.store import AdminError, PolicyAdmin

SIGN_IN_PURPOSE = "console-sign-in"
CALLBACK_PATH = "/admin/callback"


def callback_uri(resource_url: str) -> str:
    """The redirect URI the console client is registered with: /admin/callback on the resource's origin."""
    parts = urlsplit(resource_url)
    return f"{parts.scheme}://{parts.netloc}{CALLBACK_PATH}"


def register_console_client(engine, resource_url: str) -> None:
    """Make `mcp-acl-console` an OAuth client of the embedded issuer, once (a policy change like `client add`)."""
    registry = ClientRegistry(engine)
    found = registry.get(CONSOLE_CLIENT)
    if found is not None and redirects.matches(callback_uri(resource_url), found.redirect_uris):
        return  # registered, for this address (the resource URL may have moved since)
    admin = PolicyAdmin(engine, actor="mcp-acl console")
    registration = Registration(PUBLIC, (callback_uri(resource_url),), CODE_GRANTS)
    stored = CONSOLE_CLIENT in {cid for cid, _, _ in admin.list_clients()}
    try:
        with admin.change() as conn:
            if not stored:
                admin.add_client(CONSOLE_CLIENT, False, "mcp-acl admin console", conn=conn)
            registry.attach(conn, CONSOLE_CLIENT, registration)
    except AdminError:
        if registry.get(CONSOLE_CLIENT) is None:  # not a concurrent first sign-in that got there first
            raise


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _jti(claims: dict) -> str | None:
    # The embedded issuer always sets one; an external provider's token may not (it cannot then be revoked alone).
    jti = claims.get("jti")
    return jti if isinstance(jti, str) and jti else None


def _safe_next(value: str | None) -> str:
    # Only a page of the console: never another site (an open redirect) nor //host.
    if value and value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin/"


class SignIn:
    """The console's /login, /callback and /logout."""

    def __init__(self, console: Console) -> None:
        self.console = console
        settings = console.settings
        self.embedded = settings.embedded_issuer and console.keys is not None
        self.external = None if settings.embedded_issuer else ExternalProvider(settings.issuer)
        if self.embedded:
            self.options = options_from(settings)
        # Made at the first sign-in, not with the app: building them may write (a first signing key).
        self._server: EmbeddedAuthorizationServer | None = None
        self._verifier = None

    @property
    def server(self) -> EmbeddedAuthorizationServer:
        if self._server is None:
            self._server = EmbeddedAuthorizationServer(self.console.engine, self.console.keys, self.options)
        return self._server

    @property
    def verifier(self):
        if self._verifier is None:
            self._verifier = build_verifier(self.console.settings, self.console.engine)
        return self._verifier

    def _redirect_uri(self, request: Request) -> str:
        # The browser's own origin: a loopback URI matches the registered one on any port.
        return f"{request.url.scheme}://{request.url.netloc}{CALLBACK_PATH}"

    async def login(self, request: Request) -> Response:
        console = self.console
        if not self.embedded and (self.external is None or not self.external.client_id):
            return console.render(request, "error.html", 501, message=(
                "No sign-in is configured for the console: with an external identity provider (MCP_ACL_ISSUER), "
                f"register the console there and set {CLIENT_ID_ENV} (docs/console.md)."))
        if read_session(console, request) is not None:
            return RedirectResponse(_safe_next(request.query_params.get("next")), 303, headers=SECURITY_HEADERS)
        state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        redirect_uri = self._redirect_uri(request)
        params = {
            "response_type": "code", "redirect_uri": redirect_uri,
            "scope": console.settings.required_scope, "state": state, "resource": console.settings.resource_url,
            "code_challenge": _challenge(verifier), "code_challenge_method": "S256",
        }
        if self.embedded:
            await run_in_threadpool(register_console_client, console.engine, console.settings.resource_url)
            # Relative: the issuer's pages are served by this same process, on the origin the browser uses.
            authorize = f"{self.options.path}{AUTHORIZE_PATH}?" + urlencode({"client_id": CONSOLE_CLIENT, **params})
        else:
            try:
                endpoints = await self.external.endpoints()
            except ProviderError as exc:
                return console.render(request, "error.html", 502, message=f"The identity provider cannot be used: {exc}")
            authorize = endpoints.authorization + ("&" if "?" in endpoints.authorization else "?") + urlencode(
                {"client_id": self.external.client_id, **params})
        response = RedirectResponse(authorize, 303, headers=SECURITY_HEADERS)
        pending = {
            "state": state, "verifier": verifier, "redirect_uri": redirect_uri,
            "next": _safe_next(request.query_params.get("next")), "exp": time.time() + SIGN_IN_LIFETIME,
        }
        response.set_cookie(
            "mcp_acl_console_sign_in", console.signer.sign(SIGN_IN_PURPOSE, pending), path="/admin/callback",
            httponly=True, samesite="lax", secure=console.secure, max_age=SIGN_IN_LIFETIME,
        )
        return response

    async def callback(self, request: Request) -> Response:
        console = self.console
        if not self.embedded and (self.external is None or not self.external.client_id):
            return console.render(request, "error.html", 501, message="No sign-in is configured for the console.")
        pending = console.signer.read(SIGN_IN_PURPOSE, request.cookies.get("mcp_acl_console_sign_in"))
        params = request.query_params
        if pending is None or not isinstance(pending.get("exp"), (int, float)) or pending["exp"] < time.time():
            return self._failed(request, "This sign-in has expired or did not start here. Start again.", 400)
        if not hmac.compare_digest(str(pending.get("state", "")).encode(), params.get("state", "").encode()):
            return self._failed(request, "This sign-in answer does not belong to this browser's sign-in (state). Start again.", 400)
        if params.get("iss") not in (None, console.settings.expected_issuer):
            return self._failed(request, "The sign-in came back from another issuer. Start again.", 400)
        if params.get("error"):
            return self._failed(request, f"The sign-in did not complete ({params['error']}).", 403)
        if self.embedded:
            token = await run_in_threadpool(self._exchange, params.get("code", ""), pending)
        else:
            try:
                token = await self.external.exchange(
                    params.get("code", ""), str(pending.get("verifier", "")), str(pending.get("redirect_uri", "")),
                    console.settings.resource_url)
            except ProviderError as exc:
                return self._failed(request, f"The identity provider cannot be used: {exc}", 502)
        verifier = await run_in_threadpool(lambda: self.verifier)
        access = await verifier.verify_token(token) if token else None
        if access is None:
            return self._failed(request, "The sign-in could not be completed (the code was refused). Start again.", 400)
        identity = identity_from_claims(access.claims or {}, console.settings)
        if identity.subject is None:
            return self._failed(request, "The console needs a user's sign-in.", 403)
        decision = await run_in_threadpool(decide_admin, console, identity)
        await run_in_threadpool(audit_admin, console, identity, "console sign-in", decision, None, "sign in to the console")
        if not decision.allowed:
            response = console.render(request, "refused.html", 403, reason=decision.reason, subject=identity.subject)
            response.delete_cookie("mcp_acl_console_sign_in", path="/admin/callback")
            return response
        now = time.time()
        session = ConsoleSession(
            identity.subject, identity.client_id or CONSOLE_CLIENT, identity.issuer or "", _jti(access.claims or {}),
            float(access.expires_at or now), tuple(sorted(identity.roles)), secrets.token_urlsafe(32), now, now,
        )
        response = RedirectResponse(_safe_next(pending.get("next")), 303, headers=SECURITY_HEADERS)
        response.delete_cookie("mcp_acl_console_sign_in", path="/admin/callback")
        console.set_session(response, session)
        return response

    async def logout(self, console: Console, request: Request, session: ConsoleSession, form: dict[str, str]) -> Response:
        response = console.render(request, "signed_out.html")
        console.end_session(response)
        return response

    def _exchange(self, code: str, pending: dict) -> str | None:
        """The access token for `code`, from the issuer's own token endpoint (in-process), or None."""
        form = (
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", str(pending.get("redirect_uri", ""))),
            ("client_id", CONSOLE_CLIENT), ("code_verifier", str(pending.get("verifier", ""))),
            ("resource", self.console.settings.resource_url),
        )
        headers = Headers({"content-type": "application/x-www-form-urlencoded"})
        answer = self.server.create_token_response(HttpRequestData("POST", self.options.url(TOKEN_PATH), headers, (), form))
        if answer.status_code != 200:
            return None
        try:
            token = json.loads(answer.body).get("access_token")
        except ValueError:
            return None
        return token if isinstance(token, str) else None

    def _failed(self, request: Request, message: str, status: int) -> Response:
        response = self.console.render(request, "error.html", status, message=message, sign_in=True)
        response.delete_cookie("mcp_acl_console_sign_in", path="/admin/callback")
        return response
