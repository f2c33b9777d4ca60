"""Upstream health as serving gateways report it, for `upstream list` and `show` in another process.

A serving gateway upserts one row per upstream when a connection opens,
fails or is re-read (never on the call path); the admin CLI only reads.
The row says what the gateway saw last: `connected`, `down` or `stopped`
(the gateway that reported has shut down). It holds no secret: error texts
are scrubbed of credential values before they are written (see
mcp_acl/upstream/health.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mcp_acl.store import tables as t
from mcp_acl.store.admin import utcnow

# What `upstream list` says when no gateway has written a row for an upstream.
UNREPORTED = "no gateway has reported"


@dataclass(frozen=True)
class UpstreamStatus:
    """One upstream as a gateway last saw it."""

    state: str  # connected | down | stopped
    tools_listed: int | None = None  # tools in the gateway's catalogue
    tools_withheld: int | None = None  # changed or new tools held back until approved
    last_error: str | None = None
    last_seen_at: datetime | None = None  # when the gateway last connected to it or read its tools
    reported_by: str = ""  # host:pid of the gateway
    reported_at: datetime | None = None


def report_status(engine: Engine, upstream: str, status: UpstreamStatus) -> None:
    """Upsert `upstream`'s row; an upstream removed meanwhile is skipped (its row went with it)."""
    values = {
        "state": status.state, "tools_listed": status.tools_listed, "tools_withheld": status.tools_withheld,
        "last_error": status.last_error, "last_seen_at": status.last_seen_at,
        "reported_by": status.reported_by, "reported_at": status.reported_at or utcnow(),
    }
    try:
        with engine.begin() as conn:
            if conn.execute(update(t.upstream_status).where(t.upstream_status.c.upstream == upstream).values(**values)).rowcount == 0:
                conn.execute(insert(t.upstream_status).values(upstream=upstream, **values))
    except IntegrityError:
        # The upstream was removed (foreign key), or another gateway inserted first: its report stands
        # until this gateway's next change.
        pass


def mark_stopped(engine: Engine, reporter: str) -> None:
    """The gateway `reporter` stops serving: its rows say so, instead of a state nobody keeps up to date."""
    with engine.begin() as conn:
        conn.execute(
            update(t.upstream_status).where(t.upstream_status.c.reported_by == reporter)
            .values(state="stopped", reported_at=utcnow())
        )


def read_statuses(conn: Connection, names: Iterable[str] | None = None) -> dict[str, UpstreamStatus]:
    """The last report per upstream (all of them, or those in `names`)."""
    query = select(t.upstream_status)
    if names is not None:
        query = query.where(t.upstream_status.c.upstream.in_(list(names)))
    return {
        r.upstream: UpstreamStatus(
            state=r.state, tools_listed=r.tools_listed, tools_withheld=r.tools_withheld, last_error=r.last_error,
            last_seen_at=r.last_seen_at, reported_by=r.reported_by, reported_at=r.reported_at,
        )
        for r in conn.execute(query)
    }


def pinned_counts(conn: Connection) -> dict[str, int]:
    """How many tool definitions are pinned per upstream."""
    query = select(t.upstream_tools.c.upstream, func.count()).group_by(t.upstream_tools.c.upstream)
    return {name: count for name, count in conn.execute(query)}
