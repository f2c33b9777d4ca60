"""Signing in to the console through an external identity provider (a test provider on loopback)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode

import anyio
import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp_acl.app import create_app
from mcp_acl.config import Settings
from mcp_acl.store import tables as t
from tests.auth.support import LoopbackServer, TestIssuer, claims_for
from tests.console.support import browser, require_browser
from tests.support.demo_gateway import make_demo


class Provider(TestIssuer):
    """A provider that signs in whoever `user` names at once, with authorization code + PKCE."""

    __test__ = False
    user: str = "admin"
    codes: dict | None = None
    resource: str = ""
    extra: dict | None = None  # more claims for the next token (roles, jti, exp)

    def app(self) -> Starlette:
        base = super().app()
        self.codes = {}

        async def metadata(request: Request) -> Response:
            return JSONResponse({"issuer": self.issuer, "jwks_uri": self.url + "/keys",
                                 "authorization_endpoint": self.url + "/authorize", "token_endpoint": self.url + "/token"})

        async def authorize(request: Request) -> Response:
            q = request.query_params
            assert q["client_id"] == "console-app" and q["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = (q["code_challenge"], q["redirect_uri"], self.user)
            return RedirectResponse(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]}), 302)

        async def token(request: Request) -> Response:
            form = await request.form()
            challenge, redirect_uri, user = self.codes.pop(form["code"], (None, None, None))
            proof = base64.urlsafe_b64encode(hashlib.sha256(form["code_verifier"].encode()).digest()).rstrip(b"=").decode()
            if challenge != proof or redirect_uri != form["redirect_uri"] or form["client_id"] != "console-app":
                return JSONResponse({"error": "invalid_grant"}, 400)
            claims = claims_for(self.issuer, self.resource, sub=user, client_id="console-app", **(self.extra or {}))
            return JSONResponse({"access_token": self.sign(claims), "token_type": "Bearer"})

        routes = [Route("/.well-known/openid-configuration", metadata), Route("/authorize", authorize),
                  Route("/token", token, methods=["POST"]), *base.routes]
        return Starlette(routes=routes)


@pytest.fixture
def _browser_present() -> None:
    require_browser()


@pytest.mark.usefixtures("_browser_present")
async def test_an_external_providers_admin_signs_in_and_its_other_users_are_refused(sqlite_url, monkeypatch):
    monkeypatch.setenv("MCP_ACL_CONSOLE_CLIENT_ID", "console-app")
    provider = Provider(RSAKey.generate_key(2048, private=True))
    idp = LoopbackServer(provider.app())
    provider.url = await anyio.to_thread.run_sync(idp.__enter__)
    world = make_demo(sqlite_url)
    settings = Settings(database_url=sqlite_url, issuer=provider.issuer)
    provider.resource = settings.resource_url
    server = LoopbackServer(create_app(settings, world.engine), lifespan="on")
    base = await anyio.to_thread.run_sync(server.__enter__)
    try:
        async with browser() as chrome:
            page = await chrome.new_page()
            page.set_default_timeout(15_000)
            await page.goto(base + "/admin/grants")
            assert (await page.inner_text("h1")).startswith("Grants") and page.url == base + "/admin/grants"
            provider.user = "alice"
            other = await (await chrome.new_context()).new_page()
            await other.goto(base + "/admin/")
            assert await other.inner_text("h1") == "Not an administrator"
        with world.engine.connect() as conn:
            rows = conn.execute(select(t.audit_events.c.subject, t.audit_events.c.issuer, t.audit_events.c.decision)
                                .where(t.audit_events.c.action == "console sign-in").order_by(t.audit_events.c.id)).all()
        assert [tuple(r) for r in rows] == [("admin", provider.issuer, "allow"), ("alice", provider.issuer, "deny")]
    finally:
        await anyio.to_thread.run_sync(server.__exit__, None, None, None)
        await anyio.to_thread.run_sync(idp.__exit__, None, None, None)
        world.engine.dispose()
