"""Helpers for the auth tests: a loopback server, hand-made tokens, a test issuer."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import uvicorn
from joserfc import jws
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_acl.auth import SigningKeys, mint_access_token


EMBEDDED_ISSUER = "http://127.0.0.1:8000"
RESOURCE = "http://127.0.0.1:8000/mcp"


def mint(keys: SigningKeys, **overrides) -> str:
    """A token from the embedded issuer for alice through `agent`; keyword arguments replace the defaults."""
    options = {
        "issuer": EMBEDDED_ISSUER,
        "audience": RESOURCE,
        "subject": "alice",
        "client_id": "agent",
        "scopes": ["mcp"],
        "ttl": timedelta(hours=1),
    }
    options.update(overrides)
    return mint_access_token(keys, **options)


class LoopbackServer:
    """An ASGI app under uvicorn on 127.0.0.1, port 0, in a background thread."""

    def __init__(self, app, *, lifespan: str = "off") -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan, ws="none", http="h11")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the loopback server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def b64(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict) -> str:
    """A dict as a base64url JSON segment."""
    return b64(json.dumps(value, separators=(",", ":")).encode())


def sign_with(key: RSAKey, claims: dict, *, kid: str, typ: str | None = "at+jwt", alg: str = "RS256") -> str:
    """A JWS compact token signed by `key`, with the header we choose."""
    header = {"alg": alg, "kid": kid}
    if typ is not None:
        header["typ"] = typ
    return jws.serialize_compact(header, json.dumps(claims), key, algorithms=[alg])


def claims_for(issuer: str, audience: str, **extra) -> dict:
    """Good access-token claims for `issuer` and `audience`, valid for an hour from now."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": "alice",
        "aud": audience,
        "client_id": "agent",
        "scope": "mcp",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": f"jti-{now}",
    }
    claims.update(extra)
    return claims


@dataclass
class TestIssuer:
    """An external issuer on loopback: its discovery document and JWKS, and a key to sign with."""

    key: RSAKey
    kid: str = "issuer-key-1"
    url: str = ""
    # What the discovery document says; None: the issuer's own URL.
    claimed_issuer: str | None = None
    # Served paths: "openid", "oauth" (appended), "oauth-inserted" (RFC 8414 §3.1).
    documents: tuple[str, ...] = ("openid",)
    path: str = ""
    jwks_hits: int = 0
    jwks_down: bool = False  # the JWKS endpoint answers 503
    extra_keys: list[dict] = field(default_factory=list)

    __test__ = False  # not a test class despite its name

    @property
    def issuer(self) -> str:
        """The issuer identifier tokens carry."""
        return self.url + self.path

    def sign(self, claims: dict, **kw) -> str:
        """A token signed by this issuer's key."""
        return sign_with(self.key, claims, kid=self.kid, **kw)

    def app(self) -> Starlette:
        """The issuer's HTTP side."""

        async def metadata(request: Request) -> Response:
            return JSONResponse({"issuer": self.claimed_issuer or self.issuer, "jwks_uri": self.url + "/keys"})

        async def keys(request: Request) -> Response:
            self.jwks_hits += 1
            if self.jwks_down:
                return JSONResponse({"error": "unavailable"}, status_code=503)
            public = {**self.key.as_dict(private=False), "kid": self.kid, "use": "sig", "alg": "RS256"}
            return JSONResponse({"keys": [public, *self.extra_keys]})

        paths = {
            "openid": self.path + "/.well-known/openid-configuration",
            "oauth": self.path + "/.well-known/oauth-authorization-server",
            "oauth-inserted": "/.well-known/oauth-authorization-server" + self.path,
        }
        routes = [Route(paths[d], metadata) for d in self.documents]
        return Starlette(routes=[*routes, Route("/keys", keys)])


class Clock:
    """A clock the test moves by hand: pass it as `clock=`; `advance(seconds)`."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds
