"""Where a request meets the gateway: who is calling, and on which session.

The identity is read once, here, and passed inward as a plain `Identity`.
Over HTTP it comes from the access token the auth middleware verified (the
SDK keeps it in a context variable); over stdio it was fixed when the
process started, from the token in `MCP_ACL_TOKEN`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol

from mcp.server.auth.middleware.auth_context import get_access_token

from mcp_acl.auth.middleware import IDENTITY_KEY, TOKEN_ID_KEY
from mcp_acl.config import Settings
from mcp_acl.policy import Identity

SESSION_HEADER = "mcp-session-id"
NO_IDENTITY = "The request carries no verified identity."


class CallerUnknown(Exception):
    """A request reached the gateway without a verified identity (never allowed)."""


class CallerEdge(Protocol):
    """How handlers learn the caller's identity and session."""

    transport: str

    def identity(self, ctx: Any = None) -> Identity:
        """The caller of the request being handled (`ctx` when there is one); raises CallerUnknown without one."""
        ...

    def session_id(self, ctx: Any) -> str | None:
        """The MCP session the request belongs to, if any (2026-07-28 requests have none)."""
        ...

    def token_id(self, ctx: Any) -> str | None:
        """The `jti` of the caller's access token, for the deny-list check (None if it has none)."""
        ...


class HttpEdge:
    """The caller of an HTTP request: from the verified access token's claims."""

    transport = "http"

    def __init__(self, settings: Settings, to_identity: Callable[[dict, Settings], Identity]) -> None:
        self.settings = settings
        self.to_identity = to_identity

    def identity(self, ctx: Any = None) -> Identity:
        """The identity of the token the auth middleware verified for this request."""
        request = getattr(ctx, "request", None)
        scope = getattr(request, "scope", None)
        if scope is not None and isinstance(found := scope.get(IDENTITY_KEY), Identity):
            return found
        # No HTTP request at hand (a listen stream subscribing): map the token's claims.
        token = get_access_token()
        if token is None or not token.claims:
            raise CallerUnknown("no verified access token on this request")
        return self.to_identity(token.claims, self.settings)

    def session_id(self, ctx: Any) -> str | None:
        """The `Mcp-Session-Id` header of the request (None on the first request and on 2026-07-28)."""
        request = getattr(ctx, "request", None)
        headers = getattr(request, "headers", None)
        return headers.get(SESSION_HEADER) if headers is not None else None

    def token_id(self, ctx: Any) -> str | None:
        """The jti the auth middleware found in the request's token."""
        scope = getattr(getattr(ctx, "request", None), "scope", None)
        found = scope.get(TOKEN_ID_KEY) if scope is not None else None
        return found if isinstance(found, str) else None


class FixedEdge:
    """The caller of a stdio server: one identity and one session, while the token it came from lasts."""

    transport = "stdio"

    def __init__(
        self, identity: Identity, session_id: str, expires_at: datetime,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc), token_id: str | None = None,
    ) -> None:
        self._identity = identity
        self._session_id = session_id
        self._expires_at = expires_at
        self._clock = clock
        self._token_id = token_id

    def identity(self, ctx: Any = None) -> Identity:
        """The identity verified at start; CallerUnknown once its token has expired (as HTTP would refuse it)."""
        if self._clock() >= self._expires_at:
            raise CallerUnknown("the access token this stdio server started with has expired")
        return self._identity

    def session_id(self, ctx: Any) -> str | None:
        """The process's one session."""
        return self._session_id

    def token_id(self, ctx: Any) -> str | None:
        """The jti of the token the process started with."""
        return self._token_id
