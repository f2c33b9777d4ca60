"""Pinned upstream tool and prompt definitions: what an administrator trusts each upstream's tools and prompts to be.

A definition is a plain dict (a tool's name, description, input schema,
annotations; a prompt's name, title, description, arguments) stored as
canonical JSON. `upstream add` connects and pins an upstream's tools and
prompts as it registers it; one added with `--no-connect` (or imported) is
pinned the first time a gateway reads it (trust on first use). From then on
a tool or prompt whose current definition differs from its pin, or that has
no pin, is withheld from every catalogue until `mcp-acl upstream approve`
pins the current definitions. `upstreams.pinned_at` says whether definitions
were recorded, so an upstream recorded with no tools or prompts still has its
later ones withheld.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mcp_acl.store import tables as t
from mcp_acl.store.admin import AdminError, PolicyAdmin, utcnow
from mcp_acl.store.upstreams import Upstream, add_upstream, unknown_upstream

Definitions = Mapping[str, dict]


@dataclass(frozen=True)
class Pins:
    """One upstream's definitions, tools and prompts each by the upstream's own name."""

    tools: dict[str, dict] = field(default_factory=dict)
    prompts: dict[str, dict] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tools or self.prompts)


# Each kind's table and the column that names the tool or prompt.
_KINDS: tuple[tuple[str, Table, str], ...] = (("tools", t.upstream_tools, "tool"), ("prompts", t.upstream_prompts, "prompt"))


def canonical(definition: dict) -> str:
    """One spelling per definition, so equal definitions compare equal as text."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def pinned_definitions(conn: Connection, upstream: str) -> Pins:
    """The pinned definitions of `upstream`'s tools and prompts (empty when none are pinned)."""
    found = {}
    for kind, table, column in _KINDS:
        rows = conn.execute(select(table.c[column], table.c.definition).where(table.c.upstream == upstream))
        found[kind] = {row[0]: json.loads(row[1]) for row in rows}
    return Pins(**found)


def _insert(conn: Connection, upstream: str, current: Pins, actor: str | None) -> None:
    now = utcnow()
    for kind, table, column in _KINDS:
        rows = [
            {"upstream": upstream, column: name, "definition": canonical(d), "pinned_by": actor, "pinned_at": now}
            for name, d in getattr(current, kind).items()
        ]
        if rows:
            conn.execute(insert(table), rows)


def pin_first_use(engine: Engine, upstream: str, current: Pins) -> Pins:
    """Pin `current` when nothing is pinned for `upstream` yet; return the pins in force afterwards.

    Used by a gateway on its first successful read of an upstream. If another
    gateway pinned at the same moment, its pins stand and are returned. An
    upstream pinned before prompts were pinned has its tools pinned and no
    prompt: its prompts are new, withheld until approved.
    """
    try:
        with engine.begin() as conn:
            pinned = pinned_definitions(conn, upstream)
            if pinned or not current or _recorded(conn, upstream):
                return pinned
            _insert(conn, upstream, current, "first use")
            _mark_recorded(conn, upstream)
            return Pins(*({name: json.loads(canonical(d)) for name, d in getattr(current, kind).items()} for kind, _, _ in _KINDS))
    except IntegrityError:
        # Raced another gateway (same rows), or the upstream was removed meanwhile.
        with engine.connect() as conn:
            return pinned_definitions(conn, upstream)


def add_pinned(admin: PolicyAdmin, up: Upstream, current: Pins) -> None:
    """Store `up` with `current` as its pinned definitions (read from it just now), in one transaction.

    Raises AdminError (nothing written) as `add_upstream` does.
    """
    with admin.change([("upstream", up.name)]) as conn:
        add_upstream(admin, up, conn)
        _insert(conn, up.name, current, admin.actor)
        _mark_recorded(conn, up.name)


def approve_definitions(admin: PolicyAdmin, upstream: str, current: Pins) -> None:
    """Replace `upstream`'s pins with `current` and bump the policy revision, in one transaction."""
    with admin.change([("upstream", upstream)]) as conn:
        if conn.execute(select(t.upstreams.c.name).where(t.upstreams.c.name == upstream)).first() is None:
            raise AdminError(unknown_upstream(upstream))
        for _, table, _ in _KINDS:
            conn.execute(delete(table).where(table.c.upstream == upstream))
        _insert(conn, upstream, current, admin.actor)
        _mark_recorded(conn, upstream)
        _raise_generation(conn, upstream)


def request_reread(admin: PolicyAdmin, upstream: str) -> None:
    """Ask every serving gateway to re-read `upstream`'s tools now (its generation and the revision go up)."""
    with admin.change([("upstream", upstream)]) as conn:
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


def trusted(pinned: Definitions, name: str, definition: dict) -> bool:
    """Whether `definition` is exactly what is pinned for the tool (or prompt) `name`."""
    return name in pinned and canonical(pinned[name]) == canonical(definition)
