"""Loading the current policy from SQL, compiled and cached per revision."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from mcp_acl.policy import CompiledPolicy, Effect, Grant, compile_policy
from mcp_acl.policy.compiled import ClientInfo, compile_grant
from mcp_acl.store import tables as t
from mcp_acl.store.engine import StoreError
from mcp_acl.store.lookup import Lookup, must_not_wait
from mcp_acl.store.shadow import ShadowCandidate, active_shadow_row, compile_shadow


T = TypeVar("T")

# Built once: every decision reads the revision, and building the statement
# costs more than running it.
_REVISION = select(t.policy_revision.c.revision).where(t.policy_revision.c.id == 1)


def read_revision(conn: Connection) -> int:
    """The policy revision as committed now."""
    rev = conn.execute(_REVISION).scalar()
    if rev is None:
        raise StoreError("the database has no policy revision: run `mcp-acl init`")
    return int(rev)


def consistent_read(conn: Connection, read: Callable[[Connection], T], what: str) -> tuple[T, int]:
    """`read(conn)` as of one revision, and that revision; StoreError when it keeps changing.

    The data is read between two looks at the revision: every write bumps
    the revision in its own transaction, so equal revisions mean no write
    committed in between and the snapshot is consistent.
    """
    rev = read_revision(conn)
    for _ in range(10):
        data = read(conn)
        conn.rollback()
        after = read_revision(conn)
        if after == rev:
            return data, rev
        rev = after
    raise StoreError(f"the policy kept changing while it was being {what}; try again")


def grant_from_row(row) -> Grant:
    """A policy Grant from a `grants` row."""
    return Grant(
        id=row.id,
        principal=row.principal,
        effect=Effect(row.effect),
        target=row.target,
        condition=row.condition,
        expires_at=row.expires_at,
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
        limit=row.quota_limit,
        rate=row.quota_rate,
        approval_by=row.approval_by,
    )


def _read_all(conn: Connection) -> tuple[list[Grant], dict[str, set[str]], list[ClientInfo], list[str]]:
    grants = [grant_from_row(r) for r in conn.execute(select(t.grants))]
    members: dict[str, set[str]] = defaultdict(set)
    for user, role in conn.execute(select(t.role_members.c.user_name, t.role_members.c.role_name)):
        members[user].add(role)
    clients = [
        ClientInfo(cid, bool(restricted))
        for cid, restricted in conn.execute(select(t.clients.c.client_id, t.clients.c.restricted))
    ]
    disabled = list(conn.execute(select(t.users.c.name).where(t.users.c.disabled.is_(True))).scalars())
    return grants, members, clients, disabled


# Past this many revisions behind, a gateway reloads the whole policy rather than the log.
MAX_INCREMENTAL = 200
# The kinds of change the loader applies by key; any other kind means a full reload.
INCREMENTAL_KINDS = frozenset({"grant", "user", "client", "role", "upstream", "shadow"})
# A Delta's `shadow` when the log says nothing about the shadow policy.
UNCHANGED = object()


@dataclass
class Delta:
    """The current state of every key the logged changes since a revision touched."""

    grants: dict[int, Grant | None] = field(default_factory=dict)
    memberships: dict[str, frozenset[str]] = field(default_factory=dict)
    disabled: dict[str, bool] = field(default_factory=dict)
    clients: dict[str, ClientInfo | None] = field(default_factory=dict)
    # The shadow policy's row now (None: none in force), or UNCHANGED (store/shadow.py).
    shadow: object = UNCHANGED


def _read_delta(conn: Connection, since: int) -> tuple[int, Delta | None]:
    """(the revision now, the keys changed after `since` as they are now), or a None delta when the
    log cannot say everything that changed: a revision without rows, an unknown kind, too far behind."""
    rev = read_revision(conn)
    if rev < since or rev - since > MAX_INCREMENTAL:
        return rev, None
    logged = conn.execute(
        select(t.policy_changes.c.revision, t.policy_changes.c.kind, t.policy_changes.c.key)
        .where(t.policy_changes.c.revision > since, t.policy_changes.c.revision <= rev)
    ).all()
    if {r.revision for r in logged} != set(range(since + 1, rev + 1)) or any(r.kind not in INCREMENTAL_KINDS for r in logged):
        return rev, None
    delta = Delta()
    keys = defaultdict(set)
    for r in logged:
        keys[r.kind].add(r.key)
    if keys["grant"]:
        ids = {int(k) for k in keys["grant"]}
        delta.grants = dict.fromkeys(ids)
        for row in conn.execute(select(t.grants).where(t.grants.c.id.in_(ids))):
            delta.grants[row.id] = grant_from_row(row)
    if keys["user"]:
        users = keys["user"]
        roles = defaultdict(set)
        for user, role in conn.execute(select(t.role_members.c.user_name, t.role_members.c.role_name).where(t.role_members.c.user_name.in_(users))):
            roles[user].add(role)
        delta.memberships = {u: frozenset(roles[u]) for u in users}
        off = set(conn.execute(select(t.users.c.name).where(t.users.c.name.in_(users), t.users.c.disabled.is_(True))).scalars())
        delta.disabled = {u: u in off for u in users}
    if keys["client"]:
        delta.clients = dict.fromkeys(keys["client"])
        for cid, restricted in conn.execute(select(t.clients.c.client_id, t.clients.c.restricted).where(t.clients.c.client_id.in_(keys["client"]))):
            delta.clients[cid] = ClientInfo(cid, bool(restricted))
    if keys["shadow"]:
        delta.shadow = active_shadow_row(conn)
    # `role` rows change nothing compiled: a role is only a name until someone holds it or a grant names it.
    # Nor do `upstream` rows: gateways re-read an upstream's tools by its generation (store/pins.py).
    return rev, delta


def apply_delta(policy: CompiledPolicy, revision: int, delta: Delta) -> CompiledPolicy:
    """`policy` moved to `revision` by `delta`; a broken grant raises PolicyError, as a full compile would."""
    return policy.updated(
        revision,
        grants={gid: None if g is None else compile_grant(g) for gid, g in delta.grants.items()},
        memberships=delta.memberships, clients=delta.clients, disabled=delta.disabled,
    )


class PolicyLoader:
    """Hands out the compiled policy of the committed revision.

    Each call costs one small query (the revision); the policy is updated
    only when the revision moved, so a committed revocation is seen by the
    very next decision, in any process. An update applies just the keys
    the change log names (store/admin.py writes it with each change); when
    the log cannot account for every revision in between, the whole policy
    is read and compiled again. One update runs at a time per process: the
    call path and the notifier share it rather than each loading.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cached: CompiledPolicy | None = None
        self._lock = threading.Lock()
        # Hears (revision, seconds) after each reload: `serve --metrics` (observe/metrics.py).
        self.on_reload: Callable[[int, float], None] | None = None
        # How the policy was brought up to date so far: tests and benchmarks read it.
        self.loads = {"full": 0, "incremental": 0}
        # The shadow policy compiled, kept while its row stays in force (store/shadow.py).
        self._shadow: ShadowCandidate | None = None
        self._revision = Lookup(engine, "SELECT revision FROM policy_revision WHERE id = 1", "the policy could not be read", memo=True)

    def current(self) -> CompiledPolicy:
        """The policy as committed now; raises StoreError when the database fails."""
        # The common case: the revision has not moved, one driver-level read.
        found = self._revision.first()
        cached = self._cached
        if found is not None and cached is not None and cached.revision == int(found[0]):
            return cached
        must_not_wait("reloading the policy")
        with self._lock:
            # Another thread may have loaded it while this one waited for the lock.
            found = self._revision.first()
            cached = self._cached
            if found is not None and cached is not None and cached.revision == int(found[0]):
                return cached
            started = time.perf_counter()
            try:
                with self.engine.connect() as conn:
                    policy = self._load(conn, cached)
            except SQLAlchemyError as exc:
                raise StoreError(f"the policy could not be read: {exc.__class__.__name__}") from exc
            self._cached = policy
        if self.on_reload is not None:
            self.on_reload(policy.revision, time.perf_counter() - started)
        return policy

    def _load(self, conn: Connection, cached: CompiledPolicy | None) -> CompiledPolicy:
        # Any doubt about the log (a gap, an unknown kind, too far behind) means the full reload.
        if cached is not None:
            (rev, delta), consistent = consistent_read(conn, lambda c: _read_delta(c, cached.revision), "read")
            if delta is not None and rev == consistent:
                policy = apply_delta(cached, rev, delta)
                self.loads["incremental"] += 1
                policy.shadow = cached.shadow if delta.shadow is UNCHANGED else self._compiled_shadow(delta.shadow)
                return policy
        ((grants, members, clients, disabled), shadow), rev = consistent_read(
            conn, lambda c: (_read_all(c), active_shadow_row(c)), "read")
        self.loads["full"] += 1
        policy = compile_policy(rev, grants, members, clients, disabled)
        policy.shadow = self._compiled_shadow(shadow)
        return policy

    def _compiled_shadow(self, row) -> ShadowCandidate | None:
        # Compiled once per candidate set; never raises (a broken one shadows nothing).
        if row is None:
            self._shadow = None
        elif self._shadow is None or self._shadow.id != row.id:
            self._shadow = compile_shadow(row)
        return self._shadow
