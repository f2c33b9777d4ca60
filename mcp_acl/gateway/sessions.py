"""MCP sessions in the `sessions` table: who owns each one, and whether it still lives.

Every session is bound to the identity that opened it (issuer, subject,
client). Each request on a session checks its row: a killed or ended session,
or a request presenting another identity, is refused. The check is one
primary-key read, so a `mcp-acl sessions kill` from another process takes
effect on the session's very next request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_REQUEST
from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mcp_acl.policy import Identity
from mcp_acl.store import tables as t
from mcp_acl.store.commits import notify_policy_changed
from mcp_acl.store.engine import StoreError
from mcp_acl.store.lookup import Lookup, must_not_wait

KILLED = "killed"
CLOSED = "closed"
# last_seen_at is refreshed at most this often, so a busy session does not
# turn every request into a write.
TOUCH_INTERVAL = timedelta(seconds=60)
# A whole row (for `get`), built once.
_ROW = select(t.sessions).where(t.sessions.c.id == bindparam("session_id"))
# What every request on a session reads (SessionStore.admit), at driver level.
_STATE = "SELECT issuer, subject, client_id, end_reason, ended_at IS NOT NULL FROM sessions WHERE id = ?"


class SessionKillError(ValueError):
    """A session an administrator asked to kill that is not live (nothing was written)."""


class SessionRefused(Exception):
    """A request on a session that may not go on; the message is shown to the client."""


KILLED_MESSAGE = "This session was ended by an administrator; start a new session."
ENDED_MESSAGE = "This session has ended; start a new session."
NOT_OWNER_MESSAGE = "This session belongs to another identity; start a session of your own."
UNCHECKED = "The session could not be checked, so the request is refused."


def session_error(exc: Exception) -> MCPError:
    """The MCP error a request gets when its session check failed (refused, or the store is down)."""
    if isinstance(exc, SessionRefused):
        return MCPError(INVALID_REQUEST, str(exc))
    return MCPError(INTERNAL_ERROR, UNCHECKED)


@dataclass(frozen=True)
class SessionRow:
    """One recorded session."""

    id: str
    issuer: str | None
    subject: str | None
    client_id: str | None
    transport: str
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None
    end_reason: str | None

    def owner(self) -> tuple[str | None, str | None, str | None]:
        """(issuer, subject, client) as recorded."""
        return (self.issuer, self.subject, self.client_id)

    def as_dict(self) -> dict:
        """The JSON shape `mcp-acl sessions list --json` prints."""
        return {
            "id": self.id, "issuer": self.issuer, "subject": self.subject, "client_id": self.client_id,
            "transport": self.transport, "created_at": self.created_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None, "end_reason": self.end_reason,
        }


def owner_of(identity: Identity) -> tuple[str | None, str | None, str | None]:
    """The part of an identity a session is bound to."""
    return (identity.issuer, identity.subject, identity.client_id)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SessionStore:
    """Reads and writes the `sessions` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._state = Lookup(engine, _STATE, "the sessions table could not be used", memo=True)

    def get(self, session_id: str) -> SessionRow | None:
        """The row of one session, or None."""
        with self._connect() as conn:
            row = conn.execute(_ROW, {"session_id": session_id}).first()
        return SessionRow(**row._mapping) if row else None

    def open(self, session_id: str, identity: Identity, transport: str) -> SessionRow:
        """Record a new session owned by `identity`; if it already exists, return the stored row."""
        must_not_wait("recording a new session")
        now = _now()
        values = dict(
            id=session_id, issuer=identity.issuer, subject=identity.subject, client_id=identity.client_id,
            transport=transport, created_at=now, last_seen_at=now,
        )
        try:
            with self._begin() as conn:
                conn.execute(insert(t.sessions).values(**values))
        except StoreError as exc:
            # Two first requests of one session can race to create its row.
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            row = self.get(session_id)
            if row is None:
                raise
            return row
        return SessionRow(**values, ended_at=None, end_reason=None)

    def admit(self, session_id: str, identity: Identity, transport: str) -> None:
        """Check one request on `session_id`: open the row on first sight, refuse if ended or not the owner."""
        state = self._state.first((session_id,))
        if state is None:
            check(self.open(session_id, identity, transport), identity)
            return
        issuer, subject, client_id, end_reason, ended = state
        _refuse_unless_live_and_owned(bool(ended), end_reason, (issuer, subject, client_id), identity)

    def touch(self, session_id: str, at: datetime | None = None) -> None:
        """Record that the session was just used."""
        must_not_wait("recording that a session was used")
        with self._begin() as conn:
            conn.execute(update(t.sessions).where(t.sessions.c.id == session_id).values(last_seen_at=at or _now()))

    def end(self, session_id: str, reason: str) -> bool:
        """Mark a live session ended (`killed` or `closed`); False if it was not live."""
        with self._begin() as conn:
            result = conn.execute(
                update(t.sessions)
                .where(t.sessions.c.id == session_id, t.sessions.c.ended_at.is_(None))
                .values(ended_at=_now(), end_reason=reason)
            )
            if reason == KILLED:
                # Every replica hears it at commit and ends the session if it holds it (transport.py).
                notify_policy_changed(conn)
        return result.rowcount == 1

    def kill(self, session_id: str) -> SessionRow:
        """End a live session as an administrator (`sessions kill`, the console); return its row.

        Raises SessionKillError (nothing written) when there is no such session or it already ended.
        """
        row = self.get(session_id)
        if row is None:
            raise SessionKillError(f"no session {session_id!r}: see `mcp-acl sessions list`")
        if row.ended_at is not None:
            raise SessionKillError(f"session {session_id} already ended ({row.end_reason})")
        if not self.end(session_id, KILLED):
            raise SessionKillError(f"session {session_id} ended meanwhile")
        return row

    def live(self) -> list[SessionRow]:
        """Every session not ended, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                select(t.sessions).where(t.sessions.c.ended_at.is_(None)).order_by(t.sessions.c.created_at)
            ).all()
        return [SessionRow(**r._mapping) for r in rows]

    def ended_among(self, session_ids: list[str]) -> dict[str, str]:
        """Of these sessions, the ones ended since, with their end reason."""
        if not session_ids:
            return {}
        with self._connect() as conn:
            rows = conn.execute(
                select(t.sessions.c.id, t.sessions.c.end_reason)
                .where(t.sessions.c.id.in_(session_ids), t.sessions.c.ended_at.is_not(None))
            ).all()
        return {r.id: r.end_reason or CLOSED for r in rows}

    def _connect(self):
        return _guarded(self.engine.connect)

    def _begin(self):
        return _guarded(self.engine.begin)


def check(row: SessionRow, identity: Identity) -> None:
    """Refuse a request on an ended session or from an identity other than the owner."""
    _refuse_unless_live_and_owned(row.ended_at is not None, row.end_reason, row.owner(), identity)


def _refuse_unless_live_and_owned(
    ended: bool, end_reason: str | None, owner: tuple[str | None, str | None, str | None], identity: Identity,
) -> None:
    if ended:
        raise SessionRefused(KILLED_MESSAGE if end_reason == KILLED else ENDED_MESSAGE)
    if owner != owner_of(identity):
        raise SessionRefused(NOT_OWNER_MESSAGE)


@contextmanager
def _guarded(opener) -> Iterator[Connection]:
    # Database failures become StoreError, which callers turn into a refusal.
    try:
        with opener() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise StoreError(f"the sessions table could not be used: {exc.__class__.__name__}") from exc
