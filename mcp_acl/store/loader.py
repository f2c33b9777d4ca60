"""Loading the current policy from SQL, compiled and cached per revision."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from mcp_acl.policy import CompiledPolicy, Effect, Grant, compile_policy
from mcp_acl.policy.compiled import ClientInfo
from mcp_acl.store import tables as t
from mcp_acl.store.engine import StoreError
from mcp_acl.store.lookup import Lookup, must_not_wait


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


class PolicyLoader:
    """Hands out the compiled policy of the committed revision.

    Each call costs one small query (the revision); the whole policy is
    reloaded only when the revision moved, so a committed revocation is
    seen by the very next decision, in any process.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cached: CompiledPolicy | None = None
        self._lock = threading.Lock()
        # Hears (revision, seconds) after each reload: `serve --metrics` (observe/metrics.py).
        self.on_reload: Callable[[int, float], None] | None = None
        self._revision = Lookup(engine, "SELECT revision FROM policy_revision WHERE id = 1", "the policy could not be read", memo=True)

    def current(self) -> CompiledPolicy:
        """The policy as committed now; raises StoreError when the database fails."""
        # The common case: the revision has not moved, one driver-level read.
        found = self._revision.first()
        cached = self._cached
        if found is not None and cached is not None and cached.revision == int(found[0]):
            return cached
        must_not_wait("reloading the policy")
        started = time.perf_counter()
        try:
            with self.engine.connect() as conn, self._lock:
                (grants, members, clients, disabled), rev = consistent_read(conn, _read_all, "read")
        except SQLAlchemyError as exc:
            raise StoreError(f"the policy could not be read: {exc.__class__.__name__}") from exc
        policy = compile_policy(rev, grants, members, clients, disabled)
        self._cached = policy
        if self.on_reload is not None:
            self.on_reload(rev, time.perf_counter() - started)
        return policy
