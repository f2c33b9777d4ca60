"""Changes to the policy: users, roles, memberships, clients and grants.

Every change runs in one transaction that also increments the policy
revision, so a reader either sees the change and the new revision, or
neither. Bad input raises AdminError before anything is written.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mcp_acl.policy import Effect, Grant, PolicyError, check_condition
from mcp_acl.policy.approval import ADMINS, approval_spec, approvers
from mcp_acl.policy.names import Principal, parse_principal, parse_target_pattern
from mcp_acl.policy.quotas import quota_texts
from mcp_acl.store import tables as t
from mcp_acl.store.commits import notify_policy_changed
from mcp_acl.store.engine import StoreError
from mcp_acl.store.loader import grant_from_row, read_revision
from mcp_acl.store.token_ledger import revoke_party

log = logging.getLogger(__name__)

# Change-log rows older than this many revisions are pruned; a gateway that
# far behind finds a gap and reloads the whole policy.
KEEP_CHANGES = 1000


class AdminError(ValueError):
    """A change that cannot be made as asked (nothing was written)."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def bump_revision(conn: Connection) -> int:
    """Increment the policy revision inside the caller's transaction; return the new one."""
    conn.execute(update(t.policy_revision).where(t.policy_revision.c.id == 1).values(revision=t.policy_revision.c.revision + 1))
    # Gateways listening hear of it the moment it commits (PostgreSQL; SQLite's file is watched).
    notify_policy_changed(conn)
    return read_revision(conn)


@dataclass(frozen=True)
class UserRow:
    """A user as the admin CLI lists it."""

    name: str
    roles: tuple[str, ...]
    disabled: bool
    has_password: bool


class PolicyAdmin:
    """The write side of the store, used by the admin CLI and the importer."""

    def __init__(self, engine: Engine, actor: str | None = None) -> None:
        self.engine = engine
        self.actor = actor

    @contextmanager
    def change(self, changed: list[tuple[str, str]] | None = None) -> Iterator[Connection]:
        """One transaction that bumps the revision when it commits.

        `changed` is filled inside by an operation that owns the whole
        transaction with the (kind, key) pairs it touched, and logged for the
        new revision (store/loader.py applies just those). Left empty, nothing
        is logged and every gateway reloads the whole policy: the safe default
        for any change that does not say exactly what it did.
        """
        try:
            with self.engine.begin() as conn:
                yield conn
                revision = bump_revision(conn)
                _log_changes(conn, revision, changed or ())
        except IntegrityError as exc:
            raise AdminError(f"the change conflicts with what is stored: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"the database refused the change: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}") from exc

    def revision(self) -> int:
        """The current policy revision."""
        with self.engine.connect() as conn:
            return read_revision(conn)

    # users ---------------------------------------------------------------

    def add_user(self, name: str, roles: list[str] | tuple[str, ...] = (), password_hash: str | None = None, conn: Connection | None = None) -> None:
        """Create a user, optionally with roles that already exist."""
        _check_plain_name(name, "user")
        with self.joined_change(conn, [("user", name)]) as c:
            if _exists(c, t.users.c.name, name):
                raise AdminError(f"user {name!r} already exists")
            roles = list(dict.fromkeys(roles))  # `--role a --role a` means a once
            for role in roles:
                self._require_role(c, role)
            c.execute(insert(t.users).values(name=name, disabled=False, password_hash=password_hash, created_at=utcnow()))
            for role in roles:
                c.execute(insert(t.role_members).values(user_name=name, role_name=role))

    def remove_user(self, name: str) -> int:
        """Delete a user, its memberships and its grants, and revoke its live tokens; return how many grants went."""
        changed: list[tuple[str, str]] = [("user", name)]
        with self.change(changed) as c:
            self._require_user(c, name)
            gone = _delete_grants_of(c, f"user:{name}", changed)
            c.execute(delete(t.role_members).where(t.role_members.c.user_name == name))
            c.execute(delete(t.users).where(t.users.c.name == name))
            # After the delete, whose lock a token being issued to the user waits on (token_ledger).
            tokens = revoke_party(c, user=name, actor=self.actor)
        self._audit_revoked(tokens, f"user:{name}", "the user was removed")
        return gone

    def set_user_disabled(self, name: str, disabled: bool, conn: Connection | None = None) -> None:
        """Disable (or enable) a user: a disabled user is denied everything and its live tokens are revoked."""
        tokens = 0
        with self.joined_change(conn, [("user", name)]) as c:
            self._require_user(c, name)
            c.execute(update(t.users).where(t.users.c.name == name).values(disabled=disabled))
            if disabled:
                tokens = revoke_party(c, user=name, actor=self.actor)
        if conn is None:
            # Inside a bigger change (an import) the row would wait on that change's own lock.
            self._audit_revoked(tokens, f"user:{name}", "the user was disabled")

    def list_users(self) -> list[UserRow]:
        """All users with their roles, by name."""
        with self.engine.connect() as c:
            members: dict[str, list[str]] = {}
            for user, role in c.execute(select(t.role_members.c.user_name, t.role_members.c.role_name).order_by(t.role_members.c.role_name)):
                members.setdefault(user, []).append(role)
            return [
                UserRow(r.name, tuple(members.get(r.name, ())), bool(r.disabled), r.password_hash is not None)
                for r in c.execute(select(t.users).order_by(t.users.c.name))
            ]

    # roles ---------------------------------------------------------------

    def add_role(self, name: str, conn: Connection | None = None) -> None:
        """Create a role."""
        _check_plain_name(name, "role")
        with self.joined_change(conn, [("role", name)]) as c:
            if _exists(c, t.roles.c.name, name):
                raise AdminError(f"role {name!r} already exists")
            c.execute(insert(t.roles).values(name=name, created_at=utcnow()))

    def remove_role(self, name: str) -> int:
        """Delete a role, its memberships and its grants; return how many grants went."""
        changed: list[tuple[str, str]] = []
        with self.change(changed) as c:
            self._require_role(c, name)
            gone = _delete_grants_of(c, f"role:{name}", changed)
            # Its members' role sets change; an unheld role with no grants changes nothing compiled.
            members = c.execute(select(t.role_members.c.user_name).where(t.role_members.c.role_name == name)).scalars()
            changed.extend(("user", user) for user in members)
            changed.append(("role", name))
            c.execute(delete(t.role_members).where(t.role_members.c.role_name == name))
            c.execute(delete(t.roles).where(t.roles.c.name == name))
            return gone

    def list_roles(self) -> list[tuple[str, int]]:
        """Each role with its number of members."""
        with self.engine.connect() as c:
            counts = dict(c.execute(select(t.role_members.c.role_name, func.count()).group_by(t.role_members.c.role_name)).all())
            return [(name, counts.get(name, 0)) for name in c.execute(select(t.roles.c.name).order_by(t.roles.c.name)).scalars()]

    def assign(self, user: str, role: str, conn: Connection | None = None) -> None:
        """Make `user` a member of `role`."""
        with self.joined_change(conn, [("user", user)]) as c:
            self._require_user(c, user)
            self._require_role(c, role)
            if c.execute(select(t.role_members).where(t.role_members.c.user_name == user, t.role_members.c.role_name == role)).first():
                raise AdminError(f"user {user!r} already has role {role!r}")
            c.execute(insert(t.role_members).values(user_name=user, role_name=role))

    def unassign(self, user: str, role: str) -> None:
        """Take `role` away from `user`."""
        with self.change([("user", user)]) as c:
            # Named first, so a typo says "no such user", not "does not have the role".
            self._require_user(c, user)
            self._require_role(c, role)
            n = c.execute(delete(t.role_members).where(t.role_members.c.user_name == user, t.role_members.c.role_name == role)).rowcount
            if n == 0:
                raise AdminError(f"user {user!r} does not have role {role!r}")

    # clients -------------------------------------------------------------

    def add_client(self, client_id: str, restricted: bool = False, name: str | None = None, conn: Connection | None = None) -> None:
        """Register a client (an agent or app); restricted clients cap their users."""
        _check_plain_name(client_id, "client")
        with self.joined_change(conn, [("client", client_id)]) as c:
            if _exists(c, t.clients.c.client_id, client_id):
                raise AdminError(f"client {client_id!r} already exists")
            c.execute(insert(t.clients).values(client_id=client_id, name=name, restricted=restricted, created_at=utcnow()))

    def remove_client(self, client_id: str) -> int:
        """Delete a client and its grants, and revoke its live tokens; return how many grants went."""
        changed: list[tuple[str, str]] = [("client", client_id)]
        with self.change(changed) as c:
            self._require_client(c, client_id)
            gone = _delete_grants_of(c, f"client:{client_id}", changed)
            c.execute(delete(t.clients).where(t.clients.c.client_id == client_id))
            tokens = revoke_party(c, client=client_id, actor=self.actor)
        self._audit_revoked(tokens, f"client:{client_id}", "the client was removed")
        return gone

    def list_clients(self) -> list[tuple[str, str | None, bool]]:
        """Each client: id, display name, restricted."""
        with self.engine.connect() as c:
            return [(r.client_id, r.name, bool(r.restricted)) for r in c.execute(select(t.clients).order_by(t.clients.c.client_id))]

    # grants --------------------------------------------------------------

    def add_grant(
        self,
        principal: str,
        target: str,
        effect: Effect = Effect.ALLOW,
        condition: str | None = None,
        note: str | None = None,
        expires_at: datetime | None = None,
        conn: Connection | None = None,
        limit: str | None = None,
        rate: str | None = None,
        approval_by: str | None = None,
    ) -> int:
        """Validate and store a grant; return its id. The principal must exist.

        `limit` and `rate` are quotas of an allow grant (`100/day`, `10/min`; policy/quotas.py).
        `approval_by` (policy/approval.py) makes each call it allows wait for a person's approval.
        """
        try:
            limit, rate = quota_texts(effect, limit, rate)
            who = parse_principal(principal)
            parse_target_pattern(target)
            # Compiled the same way the engine will and type-checked, so
            # nothing stored fails to compile later or errors on every call
            # (an erroring deny would block everything it covers).
            if condition:
                check_condition(condition)
            if approval_by is not None:
                approval_by = approval_spec(approvers(approval_by))
        except PolicyError as exc:
            raise AdminError(str(exc)) from exc
        if expires_at is not None and expires_at.tzinfo is None:
            raise AdminError("the expiry needs a timezone")
        if approval_by is not None and effect is Effect.DENY:
            raise AdminError("a deny needs no approval: --approval is for allow grants")
        changed: list[tuple[str, str]] = []
        with self.joined_change(conn, changed) as c:
            self._require_principal(c, who.kind, who.name)
            for approver in approvers(approval_by or ADMINS):
                self._require_principal(c, *approver.split(":", 1))
            result = c.execute(
                insert(t.grants).values(
                    principal=principal, effect=effect.value, target=target,
                    condition=condition or None, note=note or None, expires_at=expires_at,
                    created_by=self.actor, created_at=utcnow(), quota_limit=limit, quota_rate=rate, approval_by=approval_by,
                )
            )
            grant_id = int(result.inserted_primary_key[0])
            # SQLite can hand out a deleted grant's id again: its counted calls are not this grant's.
            c.execute(delete(t.grant_usage).where(t.grant_usage.c.grant_id == grant_id))
            changed.append(("grant", str(grant_id)))
            return grant_id

    def revoke(self, grant_id: int) -> Grant:
        """Delete a grant; return what it was."""
        if not 0 < grant_id < 2**31:
            # Ids are 32-bit on PostgreSQL; asking it about a bigger one is an error, not a miss.
            raise AdminError(f"grant #{grant_id} does not exist (see `mcp-acl grants`)")
        with self.change([("grant", str(grant_id))]) as c:
            row = c.execute(select(t.grants).where(t.grants.c.id == grant_id)).first()
            if row is None:
                raise AdminError(f"grant #{grant_id} does not exist (see `mcp-acl grants`)")
            c.execute(delete(t.grants).where(t.grants.c.id == grant_id))
            return grant_from_row(row)

    def list_grants(self, principal: str | None = None, target: str | None = None) -> list[Grant]:
        """Grants, by id; filtered by exact principal and by target.

        A grant passes the target filter when its pattern is `target`, covers
        `target`, or (when `target` has wildcards) falls under it: so
        `tool:files.*` lists the grants on `tool:files.read` too.
        """
        with self.engine.connect() as c:
            query = select(t.grants).order_by(t.grants.c.id)
            if principal:
                query = query.where(t.grants.c.principal == principal)
            found = [grant_from_row(r) for r in c.execute(query)]
        if target:
            wanted = parse_target_pattern(target)
            found = [g for g in found if g.target == target or parse_target_pattern(g.target).matches(target) or wanted.matches(g.target)]
        return found

    def require_principal(self, principal: str) -> Principal:
        """Parse `principal` and make sure it is stored; raise AdminError otherwise."""
        try:
            who = parse_principal(principal)
        except PolicyError as exc:
            raise AdminError(str(exc)) from exc
        with self.engine.connect() as c:
            self._require_principal(c, who.kind, who.name)
        return who

    # helpers -------------------------------------------------------------

    def _audit_revoked(self, tokens: int, whose: str, why: str) -> None:
        # After the commit: the revocation stands even if its audit row cannot be written.
        if not tokens:
            return
        from mcp_acl.audit import AuditError, AuditLog  # the audit package imports the store

        try:
            AuditLog(self.engine).record_revocation(
                target=whose, reason=f"{why}: {tokens} live access token{'s' if tokens != 1 else ''} revoked", subject=self.actor,
            )
        except AuditError as exc:
            log.warning("revoked the access tokens of %s, but the audit row could not be written: %s", whose, exc)

    @contextmanager
    def joined_change(self, conn: Connection | None, changed: list[tuple[str, str]] | None = None) -> Iterator[Connection]:
        """`conn` when inside a bigger change (the importer uses one transaction); else a new `change(changed)`."""
        # Public so that store modules beside this one (upstreams) write within the same rules.
        # Inside a bigger change `changed` is dropped: that change logs for the whole transaction or not at all.
        if conn is not None:
            yield conn
        else:
            with self.change(changed) as c:
                yield c

    def _require_user(self, c: Connection, name: str) -> None:
        if not _exists(c, t.users.c.name, name):
            raise AdminError(unknown_name("user", name))

    def _require_role(self, c: Connection, name: str) -> None:
        if not _exists(c, t.roles.c.name, name):
            raise AdminError(unknown_name("role", name))

    def _require_client(self, c: Connection, client_id: str) -> None:
        if not _exists(c, t.clients.c.client_id, client_id):
            raise AdminError(unknown_name("client", client_id))

    def _require_principal(self, c: Connection, kind: str, name: str) -> None:
        if kind == "user":
            self._require_user(c, name)
        elif kind == "role":
            self._require_role(c, name)
        else:
            self._require_client(c, name)


def _delete_grants_of(c: Connection, principal: str, changed: list[tuple[str, str]]) -> int:
    """Delete every grant of `principal`, naming each in `changed` so gateways drop just those."""
    ids = list(c.execute(select(t.grants.c.id).where(t.grants.c.principal == principal)).scalars())
    if ids:
        c.execute(delete(t.grants).where(t.grants.c.id.in_(ids)))
    changed.extend(("grant", str(gid)) for gid in ids)
    return len(ids)


def _log_changes(conn: Connection, revision: int, changed) -> None:
    # Written before the commit, in the change's transaction: a reader that
    # sees the new revision sees its rows too, or their absence (a full reload).
    if changed:
        conn.execute(insert(t.policy_changes), [{"revision": revision, "kind": k, "key": key} for k, key in dict.fromkeys(changed)])
    if revision % 100 == 0:
        conn.execute(delete(t.policy_changes).where(t.policy_changes.c.revision <= revision - KEEP_CHANGES))


def unknown_name(kind: str, name: str) -> str:
    """The one wording for a user, role or client that is not stored, with where to look.

    >>> unknown_name("user", "carol")
    "user 'carol' does not exist (see `mcp-acl user list`; add it with `mcp-acl user add carol`)"
    """
    try:
        parse_principal(f"{kind}:{name}")
    except PolicyError:
        # Not a name `add` would take (white space, control characters): no command to paste.
        return f"{kind} {name!r} does not exist (see `mcp-acl {kind} list`)"
    # Quoted for the shell: `a$(id)` is a valid name, and the hint is meant to be pasted.
    return f"{kind} {name!r} does not exist (see `mcp-acl {kind} list`; add it with `mcp-acl {kind} add {shlex.quote(name)}`)"


def _exists(c: Connection, column, value: str) -> bool:
    return c.execute(select(column).where(column == value)).first() is not None


def _check_plain_name(name: str, what: str) -> None:
    try:
        parse_principal(f"{what if what != 'client' else 'client'}:{name}")
    except PolicyError as exc:
        raise AdminError(str(exc).replace("principal", what)) from exc
