"""A loopback authorization server (client credentials and RFC 8693 token exchange, signed JWTs) and an
SDK upstream that accepts only its tokens, for the upstream OAuth tests."""

from __future__ import annotations

import base64
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote

import uvicorn
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@contextmanager
def serving(make_app: Callable[[str], object]) -> Iterator[str]:
    """Serve `make_app(base_url)` under uvicorn on 127.0.0.1 (a port chosen first, so the app can know its URL)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(make_app(base), log_level="warning", lifespan="on", ws="none", http="h11"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the loopback server did not start")
        time.sleep(0.01)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Issuer:
    """The authorization server's state: its clients, its key, what it was asked (never secrets), and switches."""

    clients: dict[str, str]
    # Verifies a subject token for token exchange: its `sub`, or None to refuse it.
    subject_of: Callable[[str], str | None] = lambda token: None
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "as-1", "alg": "RS256"}))
    lifetime: int = 3600
    down: bool = False
    requests: list[dict] = field(default_factory=list)
    url: str = ""

    def app(self, base: str) -> Starlette:
        self.url = base
        return Starlette(routes=[
            Route("/token", self._token, methods=["POST"]),
            Route("/.well-known/oauth-authorization-server", self._metadata),
        ])

    async def _metadata(self, request: Request) -> JSONResponse:
        return JSONResponse({
            "issuer": self.url, "token_endpoint": f"{self.url}/token",
            "grant_types_supported": ["client_credentials", TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        })

    async def _token(self, request: Request) -> JSONResponse:
        if self.down:
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
        form = await request.form()
        client = self._client(request.headers.get("authorization", ""))
        grant = form.get("grant_type")
        asked = {"grant_type": grant, "client": client, "resource": form.get("resource"), "audience": form.get("audience"),
                 "scope": form.get("scope")}
        if client is None:
            self.requests.append(asked | {"answer": "invalid_client"})
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if grant == "client_credentials":
            subject, act = client, None
        elif grant == TOKEN_EXCHANGE and form.get("subject_token_type") == ACCESS_TOKEN_TYPE:
            subject, act = self.subject_of(str(form.get("subject_token") or "")), {"sub": client}
            asked["subject"] = subject
            if subject is None:
                self.requests.append(asked | {"answer": "invalid_grant"})
                return JSONResponse({"error": "invalid_grant", "error_description": "subject token refused"}, status_code=400)
        else:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        self.requests.append(asked | {"answer": "token"})
        now = int(time.time())
        claims = {"iss": self.url, "sub": subject, "aud": form.get("resource"), "client_id": client, "iat": now,
                  "exp": now + self.lifetime, "jti": uuid.uuid4().hex, "scope": form.get("scope") or ""}
        if act:
            claims["act"] = act
        token = jwt.encode({"alg": "RS256", "kid": "as-1", "typ": "at+jwt"}, claims, self.key)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime,
                             "issued_token_type": ACCESS_TOKEN_TYPE})

    def _client(self, header: str) -> str | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
        client_id, secret = unquote(client_id), unquote(secret)
        return client_id if self.clients.get(client_id) == secret else None

    def token_requests(self, answer: str = "token") -> list[dict]:
        return [r for r in self.requests if r["answer"] == answer]


@dataclass
class Door:
    """What the upstream saw: every bearer token presented, and tokens it now refuses (as if revoked)."""

    presented: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    # Refuse every token (an upstream whose trust in the issuer is broken).
    refuse_all: bool = False


class IssuerTokens:
    """The upstream's TokenVerifier (the SDK's hook): only unexpired, unrevoked tokens of the issuer for this resource."""

    def __init__(self, issuer: Issuer, resource: str, door: Door) -> None:
        self.issuer, self.resource, self.door = issuer, resource, door

    async def verify_token(self, token: str) -> AccessToken | None:
        self.door.presented.append(token)
        if token in self.door.revoked or self.door.refuse_all:
            return None
        try:
            claims = jwt.decode(token, KeySet([self.issuer.key])).claims
        except (JoseError, ValueError):
            return None
        if claims.get("iss") != self.issuer.url or claims.get("aud") != self.resource or claims.get("exp", 0) <= time.time():
            return None
        return AccessToken(
            token=token, client_id=claims["client_id"], scopes=(claims.get("scope") or "").split(),
            expires_at=claims["exp"], resource=self.resource, subject=claims["sub"], claims=claims,
        )


def _seen_caller() -> str:
    """Who the upstream sees: subject, client and acting party (from the token the SDK verified)."""
    token = get_access_token()
    act = (token.claims or {}).get("act", {}).get("sub") if token else None
    return f"{token.subject} via {token.client_id}" + (f" acting {act}" if act else "") if token else "nobody"


def protected_upstream(issuer: Issuer, door: Door) -> Callable[[str], object]:
    """An SDK upstream (MCPServer) behind the SDK's bearer check with `IssuerTokens`; `whoami`, the resource
    vault://me and the prompt `me` tell who called."""

    def make(base: str):
        resource = f"{base}/mcp"
        server = MCPServer(
            "vault", token_verifier=IssuerTokens(issuer, resource, door),
            auth=AuthSettings(issuer_url=issuer.url, resource_server_url=resource, validate_token_resource=False),
        )

        @server.tool()
        def whoami() -> str:
            """Who the upstream sees: subject, client and acting party."""
            return _seen_caller()

        @server.resource("vault://me", name="me", description="Who the upstream sees, as a resource.", mime_type="text/plain")
        def me() -> str:
            return _seen_caller()

        @server.prompt(name="me", description="Who the upstream sees, as a prompt.")
        def me_prompt() -> str:
            return _seen_caller()

        return server.streamable_http_app(host="127.0.0.1")

    return make
