"""Shadow policies: a candidate the gateways decide every call under as well, never enforcing it.

`set_shadow` stores the candidate file's text; setting or stopping one is a
policy change (it bumps the revision and logs kind `shadow`), so every
replica's loader picks the candidate up on its next decision, as it picks
up a grant. The loader compiles it (`compile_shadow`) and hangs it on the
compiled policy as `policy.shadow`; the gateway then records each call the
candidate decides otherwise (gateway/shadow.py) in `shadow_differences`.

A candidate that no longer compiles (stored by another version, say)
gives no shadow at all: it is logged and records nothing, and enforcement
never depends on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, insert, select, update

from mcp_acl.store import tables as t

if TYPE_CHECKING:
    from mcp_acl.policy import CompiledPolicy
    from mcp_acl.store.admin import PolicyAdmin

log = logging.getLogger(__name__)
sh = t.policy_shadows


@dataclass(frozen=True)
class ShadowCandidate:
    """The candidate in force, compiled: what `policy.shadow` holds."""

    id: int
    source: str
    policy: CompiledPolicy


@dataclass(frozen=True)
class ShadowInfo:
    """A stored shadow, without its text."""

    id: int
    source: str
    created_by: str | None
    started_at: datetime
    stopped_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "source": self.source, "created_by": self.created_by,
            "started_at": self.started_at.isoformat(), "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
        }


def _info(row) -> ShadowInfo:
    return ShadowInfo(row.id, row.source, row.created_by, row.started_at, row.stopped_at)


def active_shadow_row(conn: Connection):
    """The row of the candidate in force (id, document, source, …), or None."""
    return conn.execute(select(sh).where(sh.c.stopped_at.is_(None)).order_by(sh.c.id.desc()).limit(1)).first()


def compile_shadow(row) -> ShadowCandidate | None:
    """The stored candidate compiled, or None (logged) when it does not compile: it then shadows nothing."""
    from mcp_acl.store.candidate import load_candidate  # the candidate reads policy files, which import the store

    try:
        return ShadowCandidate(row.id, row.source, load_candidate(row.document, row.source))
    except Exception as exc:
        log.warning("the shadow policy #%s (%s) does not compile, so nothing is shadowed: %s", row.id, row.source, exc)
        return None


def set_shadow(admin: PolicyAdmin, text: str, source: str) -> int:
    """Validate the candidate and put it in force (stopping any other); return its id.

    A candidate that does not validate raises FileError naming the entry, and nothing is written.
    """
    from mcp_acl.store.candidate import load_candidate

    load_candidate(text, source)
    changed: list[tuple[str, str]] = []
    now = datetime.now(timezone.utc)
    with admin.change(changed) as conn:
        conn.execute(update(sh).where(sh.c.stopped_at.is_(None)).values(stopped_at=now))
        new_id = int(conn.execute(
            insert(sh).values(document=text, source=source[:1024], created_by=admin.actor, started_at=now)
        ).inserted_primary_key[0])
        changed.append(("shadow", str(new_id)))
    return new_id


def stop_shadow(admin: PolicyAdmin) -> ShadowInfo | None:
    """Stop the candidate in force and return it; None (nothing written) when none is."""
    with admin.engine.connect() as conn:
        if active_shadow_row(conn) is None:
            return None
    changed: list[tuple[str, str]] = []
    with admin.change(changed) as conn:
        row = active_shadow_row(conn)
        if row is None:
            return None  # stopped meanwhile; the empty change only bumps the revision
        conn.execute(update(sh).where(sh.c.stopped_at.is_(None)).values(stopped_at=datetime.now(timezone.utc)))
        changed.append(("shadow", str(row.id)))
        stopped = conn.execute(select(sh).where(sh.c.id == row.id)).first()
    return _info(stopped)


def latest_shadow(engine: Engine) -> ShadowInfo | None:
    """The candidate in force, else the one stopped last; None when none was ever set."""
    with engine.connect() as conn:
        row = active_shadow_row(conn) or conn.execute(select(sh).order_by(sh.c.id.desc()).limit(1)).first()
    return _info(row) if row is not None else None


def record_differences(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Append difference rows (shadow_differences' columns) in one transaction."""
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(t.shadow_differences), rows)


def read_differences(engine: Engine, shadow_id: int) -> list:
    """The differences recorded for one shadow, oldest first."""
    d = t.shadow_differences
    with engine.connect() as conn:
        return list(conn.execute(select(d).where(d.c.shadow_id == shadow_id).order_by(d.c.id)))
