"""The embedded issuer's end-to-end world: the gateway's test world (users,
grants, tools) with passwords, served by the real app under uvicorn on
127.0.0.1, and a browser that walks the sign-in forms over real HTTP.

The socket is bound (port 0) before the app is built, so the app's resource
URL, issuer and redirect targets all carry the real port.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
import threading
import time
from functools import lru_cache
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import uvicorn
from mcp import Client as McpClient
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from sqlalchemy import update

from mcp_acl.app import create_app
from mcp_acl.config import Settings
from mcp_acl.oauth.clients import ClientRegistry, Registration
from mcp_acl.oauth.passwords import hash_password
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from tests.gateway.harness import World, make_world

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}
ALICE_TOOLS = {"files.list", "files.read", "files.write", "sql.select"}
BOB_TOOLS = {"files.list"}
AGENT_TOOLS = {"files.list", "files.read", "sql.select"}  # ollama-agent's own grants


class LiveApp:
    """An ASGI app under uvicorn on a socket bound before the app exists."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.app: Any = None

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    def start(self, app: Any) -> None:
        """Serve `app` until `stop()`."""
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)
        self.sock.close()


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def form_request_id(page: httpx2.Response) -> str:
    """The hidden `request` field of a sign-in or consent page."""
    found = re.search(r'name=request value="([^"]+)"', page.text)
    if found is None:
        raise AssertionError(f"no sign-in form in the page ({page.status_code}): {page.text[:300]}")
    return found.group(1)


def redirect_params(response: httpx2.Response) -> dict[str, str]:
    """The query parameters of a redirect's Location."""
    assert response.status_code == 302, (response.status_code, response.text[:300])
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


@dataclass
class Client:
    """A client registered for a test, with what it needs to run a flow."""

    client_id: str
    redirect_uri: str
    secret: str | None = None


class OAuthWorld:
    """The served app plus helpers that act as a client and as a user's browser."""

    def __init__(self, world: World, live: LiveApp) -> None:
        self.world = world
        self.live = live
        self.settings: Settings = world.settings
        self.engine = world.engine
        self.http = httpx2.Client(base_url=live.base, follow_redirects=False, timeout=30)

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT"""
        return self.live.base

    @property
    def resource(self) -> str:
        """The MCP endpoint, the tokens' audience."""
        return self.settings.resource_url

    def close(self) -> None:
        """Release the HTTP client."""
        self.http.close()

    # --- clients ----------------------------------------------------------

    def register(self, redirect_uri: str | None = None, **metadata: Any) -> Client:
        """Register a public client dynamically (RFC 7591)."""
        redirect_uri = redirect_uri or f"http://127.0.0.1:{self.live.port + 1}/callback"
        body = {"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none", "client_name": "Test client",
                "grant_types": ["authorization_code", "refresh_token"], **metadata}
        response = self.http.post("/register", json=body)
        assert response.status_code == 201, response.text
        data = response.json()
        return Client(data["client_id"], redirect_uri, data.get("client_secret"))

    def make_confidential(self, client_id: str, redirect_uris: tuple[str, ...] = ()) -> str:
        """Turn an existing (policy) client into a confidential OAuth client; return its secret."""
        registry = ClientRegistry(self.engine)
        with self.engine.begin() as conn:
            return registry.attach(conn, client_id, Registration.for_admin(list(redirect_uris), confidential=True))

    # --- the user's browser -----------------------------------------------

    def browser(self) -> httpx2.Client:
        """A fresh browser (its own cookie jar) that does not follow redirects."""
        return httpx2.Client(base_url=self.live.base, follow_redirects=False, timeout=30)

    def authorize_params(self, client: Client, challenge: str, **overrides: Any) -> dict[str, str]:
        """The query of a valid authorization request for `client`."""
        params = {
            "response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uri,
            "state": secrets.token_urlsafe(12), "code_challenge": challenge, "code_challenge_method": "S256",
            "scope": self.settings.required_scope, "resource": self.resource,
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def sign_in(self, browser: httpx2.Client, params: dict[str, str], user: str = "alice",
                password: str | None = None) -> httpx2.Response:
        """GET /authorize and POST the sign-in form; return the page that follows."""
        page = browser.get("/authorize", params=params)
        assert page.status_code == 200, (page.status_code, page.text[:300])
        return browser.post("/authorize/login", data={
            "request": form_request_id(page), "username": user, "password": password or PASSWORDS.get(user, "x"),
        })

    def authorize(self, client: Client, user: str = "alice", **overrides: Any) -> tuple[dict[str, str], str, dict[str, str]]:
        """The whole browser part: returns (redirect params, verifier, request params)."""
        verifier, challenge = pkce_pair()
        params = self.authorize_params(client, challenge, **overrides)
        with self.browser() as browser:
            consent = self.sign_in(browser, params, user)
            assert consent.status_code == 200, consent.text[:300]
            answer = browser.post("/authorize/consent", data={"request": form_request_id(consent), "decision": "allow"})
        return redirect_params(answer), verifier, params

    # --- the token endpoint -----------------------------------------------

    def exchange(self, client: Client, code: str, verifier: str | None, **extra: Any) -> httpx2.Response:
        """POST /token with an authorization code."""
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri,
                "client_id": client.client_id, "code_verifier": verifier, "resource": self.resource, **extra}
        return self.http.post("/token", data={k: v for k, v in data.items() if v is not None})

    def refresh(self, client: Client, refresh_token: str) -> httpx2.Response:
        """POST /token with a refresh token."""
        return self.http.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client.client_id})

    def tokens_for(self, client: Client, user: str = "alice") -> dict:
        """Run the whole code flow for `user`; the token response."""
        answer, verifier, _ = self.authorize(client, user)
        response = self.exchange(client, answer["code"], verifier)
        assert response.status_code == 200, response.text
        return response.json()


@lru_cache(maxsize=None)
def _hashed(password: str) -> str:
    # Argon2 is slow on purpose; hash each test password once per run.
    return hash_password(password)


def start_world(database_url: str, home: Path, **settings: Any) -> OAuthWorld:
    """The gateway's world with passwords (and disabled carol), served on a fresh port."""
    world = make_world(database_url, home)
    admin = PolicyAdmin(world.engine, actor="test")
    admin.add_user("carol")
    with world.engine.begin() as conn:
        for user, password in PASSWORDS.items():
            conn.execute(update(t.users).where(t.users.c.name == user).values(password_hash=_hashed(password)))
    admin.set_user_disabled("carol", True)
    live = LiveApp()
    world.settings = replace(Settings(database_url=database_url), resource_url=f"{live.base}/mcp", **settings)
    live.start(create_app(world.settings, world.engine, gateway=world.gateway()))
    return OAuthWorld(world, live)


def restart_world(oauth: OAuthWorld, **settings: Any) -> OAuthWorld:
    """Stop `oauth`'s server and serve the same database on the same port with some settings changed.

    The same port keeps the resource URL and the issuer, so tokens minted
    before the restart are for this server too.
    """
    oauth.close()
    oauth.live.stop()
    live = LiveApp(port=oauth.live.port)
    oauth.world.settings = replace(oauth.settings, **settings)
    live.start(create_app(oauth.world.settings, oauth.engine, gateway=oauth.world.gateway()))
    return OAuthWorld(oauth.world, live)


class MemoryStorage:
    """The SDK's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


async def sdk_sign_in(
    resource: str, user: str, password: str, client_metadata_url: str | None = None,
) -> tuple[set[str], MemoryStorage]:
    """Let the SDK's OAuthClientProvider sign `user` in on its own; the tools it then lists.

    The test plays the user's browser (the redirect handler opens the
    authorization URL and answers the forms over HTTP) and the local callback
    (the callback handler hands back the code, state and iss).
    """
    answers: list[dict[str, str]] = []
    callback = "http://127.0.0.1:1/callback"  # never opened: the test reads the redirect itself

    async def redirect_handler(authorization_url: str) -> None:
        base = f"{urlsplit(authorization_url).scheme}://{urlsplit(authorization_url).netloc}"
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as browser:
            page = await browser.get(authorization_url)
            consent = await browser.post(
                f"{base}/authorize/login", data={"request": form_request_id(page), "username": user, "password": password}
            )
            done = await browser.post(f"{base}/authorize/consent", data={"request": form_request_id(consent), "decision": "allow"})
        location = done.headers["location"]
        assert location.startswith(callback), location
        answers.append({k: v[0] for k, v in parse_qs(urlsplit(location).query).items()})

    async def callback_handler() -> AuthorizationCodeResult:
        answer = answers.pop()
        return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=resource,
        client_metadata=OAuthClientMetadata(client_name="SDK test", redirect_uris=[callback]),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=client_metadata_url,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with McpClient(streamable_http_client(resource, http_client=http), mode="legacy") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
    return names, storage
