"""Per-caller sessions to a token-exchange upstream: each caller's calls carry a token exchanged for that caller.

An upstream added with `--oauth-token-exchange` must see who is calling, so
the gateway exchanges the caller's access token (RFC 8693) for a token of the
upstream's and opens a session of that caller's own (the upstream binds its
sessions to the token's principal). Sessions are kept per identity, at most
`limit` of them; one unused for `idle_seconds` is closed. The caller's token
goes to the named token endpoint only, never to the upstream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
import anyio

from mcp_acl.auth import caller_token
from mcp_acl.policy import Identity
from mcp_acl.store.upstreams import Upstream
from mcp_acl.upstream.connection import UpstreamConnection, _why
from mcp_acl.upstream.oauth import TokenSource, TokenUnavailable, UpstreamBearer, no_token

log = logging.getLogger(__name__)

MAX_CALLERS = 64
IDLE_SECONDS = 300.0
SWEEP_SECONDS = 10.0


class SessionUnavailable(Exception):
    """No session for this caller; the message is the sentence the caller gets."""


@dataclass(eq=False)
class _Caller:
    """One caller's session: its connection (with its own exchanged token) and when it was last used."""

    key: tuple
    conn: UpstreamConnection | None
    last_used: float
    subject: tuple[str, float] | None = None
    opened: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    error: str | None = None


class CallerSessions:
    """The per-caller sessions of one token-exchange upstream; `run` must be running (the pool starts it)."""

    def __init__(
        self, upstream: Upstream, *, limit: int = MAX_CALLERS, idle_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstream = upstream
        self.limit = limit
        # Never shorter than the longest call (twice the timeout, see tools.forwarder), so a call's session stays open.
        self.idle_seconds = max(idle_seconds or IDLE_SECONDS, upstream.timeout_seconds * 2)
        self.clock = clock
        self._entries: dict[tuple, _Caller] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    def __len__(self) -> int:
        return len(self._entries)

    async def run(self) -> None:
        """Hold the callers' sessions and close idle ones, until cancelled (which closes them all)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                while True:
                    await anyio.sleep(SWEEP_SECONDS)
                    self.close_idle()
            finally:
                self._tg = None

    def close_idle(self) -> None:
        """Close every session unused for `idle_seconds`."""
        cutoff = self.clock() - self.idle_seconds
        for entry in list(self._entries.values()):
            if entry.last_used <= cutoff:
                self._close(entry)

    async def session(self, identity: Identity):
        """The open session of this call's caller, opened (and its token exchanged) if need be: (client, connection).

        Raises SessionUnavailable with the caller's sentence.
        """
        name = self.upstream.name
        held = caller_token.current()
        if held is None:
            raise SessionUnavailable(
                f'the upstream "{name}" acts for each caller with an exchanged token, and this call brings no token to exchange'
            )
        if self._tg is None:
            raise SessionUnavailable(f'the upstream "{name}" cannot be reached right now; try again later')
        key = (identity.issuer, identity.subject, identity.client_id)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._open(key)
        entry.last_used = self.clock()
        # The caller's newest token is what a (re-)exchange presents.
        entry.subject = (held.reveal(), held.expires_at)
        with anyio.move_on_after(self.upstream.timeout_seconds * 2):
            await entry.opened.wait()
        if entry.conn.client is None:
            self._close(entry)
            raise SessionUnavailable(entry.error or f'the upstream "{name}" cannot be reached right now; try again later')
        return entry.conn.client, entry.conn

    def _open(self, key: tuple) -> _Caller:
        if len(self._entries) >= self.limit:
            self._make_room()
        entry = _Caller(key=key, conn=None, last_used=self.clock())
        source = TokenSource(self.upstream, subject=lambda: entry.subject)
        entry.conn = UpstreamConnection(self.upstream, log_failures=False, auth=UpstreamBearer(source))
        self._entries[key] = entry
        self._tg.start_soon(self._hold, entry)
        return entry

    def _make_room(self) -> None:
        # The least recently used session goes, unless a call may still be running on it.
        oldest = min(self._entries.values(), key=lambda e: e.last_used)
        if oldest.last_used > self.clock() - self.upstream.timeout_seconds * 2:
            raise SessionUnavailable(
                f'the upstream "{self.upstream.name}" is serving {self.limit} other callers right now; try again shortly'
            )
        self._close(oldest)

    def _close(self, entry: _Caller) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        entry.scope.cancel()

    async def _hold(self, entry: _Caller) -> None:
        conn = entry.conn
        with entry.scope:
            try:
                async with AsyncExitStack() as stack:
                    conn.client = await conn._open(stack)
                    conn.last_error = None
                    entry.opened.set()
                    # Until a call finds it broken, it sits idle too long, or the gateway stops.
                    await conn._broken.wait()
            except Exception as exc:
                entry.error = no_token(self.upstream.name) if isinstance(exc, TokenUnavailable) else None
                log.warning("upstream %s: cannot open a session for a caller: %s", self.upstream.name, _why(exc))
            finally:
                conn.client = None
                entry.opened.set()
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]

