"""Pinned upstream tool definitions: what an administrator trusts each upstream's tools to be.

A definition is a plain dict (name, description, input schema, annotations)
stored as canonical JSON. `upstream add` connects and pins an upstream's
tools as it registers it; one added with `--no-connect` (or imported) is
pinned the first time a gateway reads it (trust on first use). From then on
a tool whose current definition differs from its pin, or that has no pin,
is withheld from every catalogue until `mcp-acl upstream approve` pins the
current definitions. `upstreams.pinned_at` says whether definitions were
recorded, so an upstream recorded with no tools still has its later tools
withheld.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mcp_acl.store import tables as t
from mcp_acl.store.admin import AdminError, PolicyAdmin, utcnow
from mcp_acl.store.upstreams import Upstream, add_upstream, unknown_upstream

Definitions = Mapping[str, dict]


def canonical(definition: dict) -> str:
    """One spelling per definition, so equal definitions compare equal as text."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def pinned_definitions(conn: Connection, upstream: str) -> dict[str, dict]:
    """The pinned definitions of `upstream`'s tools, by remote tool name (empty when none are pinned)."""
    rows = conn.execute(select(t.upstream_tools.c.tool, t.upstream_tools.c.definition).where(t.upstream_tools.c.upstream == upstream))
    return {r.tool: json.loads(r.definition) for r in rows}


def _rows(upstream: str, current: Definitions, actor: str | None) -> list[dict]:
    now = utcnow()
    return [
        {"upstream": upstream, "tool": tool, "definition": canonical(d), "pinned_by": actor, "pinned_at": now}
        for tool, d in current.items()
    ]


def pin_first_use(engine: Engine, upstream: str, current: Definitions) -> dict[str, dict]:
    """Pin `current` when nothing is pinned for `upstream` yet; return the pins in force afterwards.

    Used by a gateway on its first successful read of an upstream. If another
    gateway pinned at the same moment, its pins stand and are returned.
    """
    try:
        with engine.begin() as conn:
            pinned = pinned_definitions(conn, upstream)
            if pinned or not current or _recorded(conn, upstream):
                return pinned
            conn.execute(insert(t.upstream_tools), _rows(upstream, current, "first use"))
            _mark_recorded(conn, upstream)
            return {tool: json.loads(canonical(d)) for tool, d in current.items()}
    except IntegrityError:
        # Raced another gateway (same rows), or the upstream was removed meanwhile.
        with engine.connect() as conn:
            return pinned_definitions(conn, upstream)


def add_pinned(admin: PolicyAdmin, up: Upstream, current: Definitions) -> None:
    """Store `up` with `current` as its pinned definitions (read from it just now), in one transaction.

    Raises AdminError (nothing written) as `add_upstream` does.
    """
    with admin.change() as conn:
        add_upstream(admin, up, conn)
        if current:
            conn.execute(insert(t.upstream_tools), _rows(up.name, current, admin.actor))
        _mark_recorded(conn, up.name)


def approve_definitions(admin: PolicyAdmin, upstream: str, current: Definitions) -> None:
    """Replace `upstream`'s pins with `current` and bump the policy revision, in one transaction."""
    with admin.change() as conn:
        if conn.execute(select(t.upstreams.c.name).where(t.upstreams.c.name == upstream)).first() is None:
            raise AdminError(unknown_upstream(upstream))
        conn.execute(delete(t.upstream_tools).where(t.upstream_tools.c.upstream == upstream))
        if current:
            conn.execute(insert(t.upstream_tools), _rows(upstream, current, admin.actor))
        _mark_recorded(conn, upstream)
        _raise_generation(conn, upstream)


def request_reread(admin: PolicyAdmin, upstream: str) -> None:
    """Ask every serving gateway to re-read `upstream`'s tools now (its generation and the revision go up)."""
    with admin.change() as conn:
        if not _raise_generation(conn, upstream):
            raise AdminError(unknown_upstream(upstream))


def generations(conn: Connection) -> dict[str, int]:
    """Each upstream's generation: a gateway re-reads an upstream whose generation moved."""
    return {r.name: r.generation for r in conn.execute(select(t.upstreams.c.name, t.upstreams.c.generation))}


def _recorded(conn: Connection, upstream: str) -> bool:
    """Whether definitions were recorded for `upstream` (or it is gone): then first use pins nothing."""
    row = conn.execute(select(t.upstreams.c.pinned_at).where(t.upstreams.c.name == upstream)).first()
    return row is None or row.pinned_at is not None


def _mark_recorded(conn: Connection, upstream: str) -> None:
    conn.execute(update(t.upstreams).where(t.upstreams.c.name == upstream).values(pinned_at=utcnow()))


def _raise_generation(conn: Connection, upstream: str) -> bool:
    done = conn.execute(update(t.upstreams).where(t.upstreams.c.name == upstream).values(generation=t.upstreams.c.generation + 1))
    return done.rowcount > 0


def trusted(pinned: Mapping[str, dict], tool: str, definition: dict) -> bool:
    """Whether `definition` is exactly what is pinned for `tool`."""
    return tool in pinned and canonical(pinned[tool]) == canonical(definition)
