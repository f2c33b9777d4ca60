"""The caller's own access token, kept for one purpose: exchanging it (RFC 8693) for a token towards an upstream.

The bearer middleware binds it for the length of one request (`mcp-acl
stdio` for the process's life, from MCP_ACL_TOKEN); only the
upstream token exchange reads it (`mcp_acl/upstream/oauth.py`). Handlers
learn who is calling from an Identity, never from this: CallContext carries
no token, and the SDK's AccessToken (`get_access_token()`) holds a
placeholder instead of the token. The value is in no repr, log line or
exception, and it is never sent to an upstream (MCP forbids token passthrough).
"""

from __future__ import annotations

from contextvars import ContextVar, Token

# What the SDK's AccessToken.token holds instead of the caller's token.
WITHHELD = "withheld"


class CallerToken:
    """A verified access token of the caller and when it expires (epoch seconds); its value only through `reveal()`."""

    __slots__ = ("_value", "expires_at")

    def __init__(self, value: str, expires_at: float) -> None:
        self._value = value
        self.expires_at = expires_at

    def reveal(self) -> str:
        """The token itself, to send to a token endpoint as the subject token."""
        return self._value

    def __repr__(self) -> str:
        return "CallerToken(…)"


_current: ContextVar[CallerToken | None] = ContextVar("mcp_acl_caller_token", default=None)


def bind(token: CallerToken) -> Token:
    """Make `token` the current request's caller token; reset with `unbind`."""
    return _current.set(token)


def unbind(handle: Token) -> None:
    """Undo a `bind` at the end of the request."""
    _current.reset(handle)


def current() -> CallerToken | None:
    """The caller token of the request being handled (None on stdio or outside a request)."""
    return _current.get()
