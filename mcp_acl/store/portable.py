"""The policy as a portable YAML document: export, validation, import (all or nothing).

The format (every section optional; `effect` defaults to allow):

    version: 1
    roles: [analyst]
    users:
      - {name: alice, roles: [analyst]}
      - {name: mallory, disabled: true}
    clients:
      - {id: agent, restricted: true, name: Report agent}
    grants:
      - principal: role:analyst
        target: tool:files.*
        when: args.path.startsWith("reports/")
        note: analysts may read reports
        expires: "2026-12-31T00:00:00+00:00"
      - {principal: role:analyst, target: tool:sql.query, limit: 100/day, rate: 10/min}
      - {principal: role:analyst, target: tool:sql.select, approval_by: "role:lead"}   # or "admins"
    upstreams:
      - {name: github, url: "https://example.com/mcp", headers: {Authorization: "env:GITHUB_TOKEN"}, timeout: 30}
      - {name: wiki, url: "https://wiki.example.com/sse", transport: sse, timeout: 30}

Import adds everything in the file to what is stored, in one transaction:
a name that already exists, a principal that exists neither in the file nor
in the database, or any malformed entry rejects the whole file. Grant ids
are not carried over; grants keep their order, so the same grant decides.
Passwords are never exported; upstream credentials are references (env:/file:) only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml
from sqlalchemy import Engine, select

from mcp_acl.expiry import ExpiryError, parse_instant
from mcp_acl.policy import Effect, PolicyError, check_condition, parse_principal, parse_target_pattern
from mcp_acl.policy.quotas import quota_texts
from mcp_acl.policy.approval import approval_spec, approvers
from mcp_acl.store import tables as t
from mcp_acl.store._yaml_fields import FileError, flag, kind_of, load_yaml, mapping, sequence, text
from mcp_acl.store.admin import AdminError, PolicyAdmin
from mcp_acl.store.loader import consistent_read, grant_from_row
from mcp_acl.store.upstreams import Upstream, add_upstream, list_upstreams, upstream_from_entry

FORMAT_VERSION = 1


@dataclass(frozen=True)
class UserEntry:
    """A user, its roles and whether it is disabled."""

    name: str
    roles: tuple[str, ...] = ()
    disabled: bool = False


@dataclass(frozen=True)
class ClientEntry:
    """A registered client; `restricted` makes its grants a ceiling for its users."""

    client_id: str
    restricted: bool = False
    name: str | None = None


@dataclass(frozen=True)
class GrantEntry:
    """A grant without its id: who, allow or deny, what, when, why, until when."""

    principal: str
    target: str
    effect: Effect = Effect.ALLOW
    when: str | None = None
    note: str | None = None
    expires: datetime | None = None
    # Quotas of an allow grant (policy/quotas.py), e.g. "100/day", "10/min".
    limit: str | None = None
    rate: str | None = None
    # Who must approve each call it allows (policy/approval.py), or None.
    approval_by: str | None = None


@dataclass(frozen=True)
class PolicyDocument:
    """Everything a policy file holds."""

    roles: tuple[str, ...] = ()
    users: tuple[UserEntry, ...] = ()
    clients: tuple[ClientEntry, ...] = ()
    grants: tuple[GrantEntry, ...] = ()
    upstreams: tuple[Upstream, ...] = ()

    def summary(self) -> str:
        """E.g. `2 users, 1 role, 0 clients, 3 grants`."""
        counts = ((len(self.users), "user"), (len(self.roles), "role"), (len(self.clients), "client"), (len(self.grants), "grant"))
        if self.upstreams:
            counts += ((len(self.upstreams), "upstream"),)
        return ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in counts)


# export ---------------------------------------------------------------------


def read_document(engine: Engine) -> tuple[PolicyDocument, int]:
    """The stored policy as a document, and the revision it was read at."""
    with engine.connect() as conn:
        return consistent_read(conn, _read, "exported")


def _read(conn) -> PolicyDocument:
    members: dict[str, list[str]] = {}
    for user, role in conn.execute(select(t.role_members.c.user_name, t.role_members.c.role_name).order_by(t.role_members.c.role_name)):
        members.setdefault(user, []).append(role)
    users = tuple(
        UserEntry(r.name, tuple(members.get(r.name, ())), bool(r.disabled))
        for r in conn.execute(select(t.users.c.name, t.users.c.disabled).order_by(t.users.c.name))
    )
    roles = tuple(conn.execute(select(t.roles.c.name).order_by(t.roles.c.name)).scalars())
    clients = tuple(
        ClientEntry(r.client_id, bool(r.restricted), r.name)
        for r in conn.execute(select(t.clients).order_by(t.clients.c.client_id))
    )
    grants = tuple(
        GrantEntry(g.principal, g.target, g.effect, g.condition, g.note, g.expires_at, g.limit, g.rate, g.approval_by)
        for g in map(grant_from_row, conn.execute(select(t.grants).order_by(t.grants.c.id)))
    )
    return PolicyDocument(roles, users, clients, grants, tuple(list_upstreams(conn)))


def dump_document(doc: PolicyDocument, revision: int | None = None) -> str:
    """The document as YAML text (the format `parse_document` reads)."""
    data: dict[str, Any] = {"version": FORMAT_VERSION, "roles": list(doc.roles), "users": [], "clients": [], "grants": []}
    for u in doc.users:
        data["users"].append({"name": u.name, **({"roles": list(u.roles)} if u.roles else {}), **({"disabled": True} if u.disabled else {})})
    for c in doc.clients:
        data["clients"].append({"id": c.client_id, **({"name": c.name} if c.name else {}), "restricted": c.restricted})
    for g in doc.grants:
        entry: dict[str, Any] = {"principal": g.principal, "effect": g.effect.value, "target": g.target}
        entry.update({k: v for k, v in (("when", g.when), ("note", g.note)) if v})
        if g.expires is not None:
            entry["expires"] = g.expires.isoformat()
        entry.update({k: v for k, v in (("limit", g.limit), ("rate", g.rate)) if v})
        if g.approval_by is not None:
            entry["approval_by"] = g.approval_by
        data["grants"].append(entry)
    if doc.upstreams:
        data["upstreams"] = [up.portable() for up in doc.upstreams]
    head = "# mcp-acl policy" + (f", exported at revision {revision}" if revision is not None else "") + "\n"
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)


# validation -----------------------------------------------------------------


def parse_document(source_text: str, source: str = "the file") -> PolicyDocument:
    """Read and validate a policy file; raise FileError naming the first bad entry."""
    data = load_yaml(source_text, source)
    if data is None:
        raise FileError(f"{source}: the file is empty (expected roles, users, clients, grants)")
    top = mapping(data, source, ("version", "roles", "users", "clients", "grants", "upstreams"))
    version = top.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise FileError(f"version: this mcp-acl reads format version {FORMAT_VERSION}, not {version!r}")
    roles = tuple(_name(v, f"roles[{i}]", "role") for i, v in enumerate(sequence(top.get("roles"), "roles")))
    users = tuple(_user(v, f"users[{i}]") for i, v in enumerate(sequence(top.get("users"), "users")))
    clients = tuple(_client(v, f"clients[{i}]") for i, v in enumerate(sequence(top.get("clients"), "clients")))
    grants = tuple(_grant(v, f"grants[{i}]") for i, v in enumerate(sequence(top.get("grants"), "grants")))
    upstreams = tuple(upstream_from_entry(v, f"upstreams[{i}]") for i, v in enumerate(sequence(top.get("upstreams"), "upstreams")))
    return PolicyDocument(roles, users, clients, grants, upstreams)


def _name(value: Any, path: str, kind: str) -> str:
    name = text(value, path)
    try:
        parse_principal(f"{kind}:{name}")
    except PolicyError as exc:
        raise FileError(f"{path}: {exc}") from None
    return name


def _user(value: Any, path: str) -> UserEntry:
    entry = mapping(value, path, ("name", "roles", "disabled"), required=("name",))
    roles = tuple(_name(r, f"{path}.roles[{i}]", "role") for i, r in enumerate(sequence(entry.get("roles"), f"{path}.roles")))
    return UserEntry(_name(entry["name"], f"{path}.name", "user"), roles, flag(entry.get("disabled"), f"{path}.disabled"))


def _client(value: Any, path: str) -> ClientEntry:
    entry = mapping(value, path, ("id", "name", "restricted"), required=("id",))
    return ClientEntry(
        _name(entry["id"], f"{path}.id", "client"),
        flag(entry.get("restricted"), f"{path}.restricted"),
        text(entry.get("name"), f"{path}.name", optional=True),
    )


def _grant(value: Any, path: str) -> GrantEntry:
    entry = mapping(value, path, ("principal", "effect", "target", "when", "note", "expires", "limit", "rate", "approval_by"), required=("principal", "target"))
    principal, target = text(entry["principal"], f"{path}.principal"), text(entry["target"], f"{path}.target")
    effect = entry.get("effect", "allow")
    if effect not in ("allow", "deny"):
        raise FileError(f"{path}.effect: expected allow or deny, got {effect!r}")
    when = text(entry.get("when"), f"{path}.when", optional=True)
    for key, check in (("principal", parse_principal), ("target", parse_target_pattern), ("when", check_condition)):
        try:
            if entry.get(key) is not None:
                check(entry[key])
        except PolicyError as exc:
            raise FileError(f"{path}.{key}: {exc}") from None
    expires = entry.get("expires")
    if expires is not None:
        if not isinstance(expires, (str, date)):
            raise FileError(f"{path}.expires: expected an ISO 8601 time, got {kind_of(expires)}")
        try:
            expires = parse_instant(expires)
        except ExpiryError as exc:
            raise FileError(f"{path}.expires: {exc}") from None
    quotas: dict[str, str | None] = {"limit": None, "rate": None}
    for kind in quotas:
        value = text(entry.get(kind), f"{path}.{kind}", optional=True)
        try:
            quotas[kind] = quota_texts(Effect(effect), *((value, None) if kind == "limit" else (None, value)))[kind == "rate"]
        except PolicyError as exc:
            raise FileError(f"{path}.{kind}: {exc}") from None
    approval_by = text(entry.get("approval_by"), f"{path}.approval_by", optional=True)
    if approval_by is not None:
        try:
            approval_by = approval_spec(approvers(approval_by))
        except PolicyError as exc:
            raise FileError(f"{path}.approval_by: {exc}") from None
    note = text(entry.get("note"), f"{path}.note", optional=True)
    return GrantEntry(principal, target, Effect(effect), when, note, expires, quotas["limit"], quotas["rate"], approval_by)


# import ---------------------------------------------------------------------


@contextmanager
def _entry(path: str) -> Iterator[None]:
    # The store's own checks (already exists, unknown role, unknown
    # principal) run inside the import transaction; name the entry they hit.
    try:
        yield
    except FileError:
        raise
    except AdminError as exc:
        raise FileError(f"{path}: {exc}") from None


def import_document(admin: PolicyAdmin, doc: PolicyDocument) -> int:
    """Add everything in `doc` in one transaction; return the new revision.

    Any problem raises FileError naming the entry, and nothing is written.
    """
    with admin.change() as conn:
        for i, role in enumerate(doc.roles):
            with _entry(f"roles[{i}]"):
                admin.add_role(role, conn=conn)
        for i, user in enumerate(doc.users):
            with _entry(f"users[{i}]"):
                admin.add_user(user.name, user.roles, conn=conn)
                if user.disabled:
                    admin.set_user_disabled(user.name, True, conn=conn)
        for i, client in enumerate(doc.clients):
            with _entry(f"clients[{i}]"):
                admin.add_client(client.client_id, client.restricted, client.name, conn=conn)
        for i, g in enumerate(doc.grants):
            with _entry(f"grants[{i}]"):
                admin.add_grant(g.principal, g.target, g.effect, g.when, g.note, g.expires, conn=conn, limit=g.limit, rate=g.rate, approval_by=g.approval_by)
        for i, up in enumerate(doc.upstreams):
            with _entry(f"upstreams[{i}]"):
                add_upstream(admin, up, conn=conn)
    return admin.revision()
