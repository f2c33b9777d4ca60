"""Counting calls against grant quotas, in SQL, inside the admission's transaction.

`QuotaCharge.run` is called by the audit appender (audit/appender.py) on
its own DBAPI cursor, after it has taken the append lock and before it
writes the decision row, so the count and the audit row commit together or
not at all (a call that is not admitted is never counted). Each count is
one statement that holds across processes and replicas on its own:

    INSERT INTO grant_usage (…, calls) VALUES (…, 1)
    ON CONFLICT (principal, grant_id, kind, window_start)
    DO UPDATE SET calls = grant_usage.calls + 1 WHERE grant_usage.calls < LIMIT

It changes one row when there was room and none when the window is used
up (the conflicting row stays locked to this transaction on PostgreSQL,
and SQLite holds its write lock), so two replicas can never both take the
last call. A grant with both a limit and a rate is charged both; when the
second is full, the first is given back in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, select

from mcp_acl.policy.quotas import LONGEST_PERIOD, Allowance, Quota
from mcp_acl.store import tables as t

_TAKE = (
    "INSERT INTO grant_usage (principal, grant_id, kind, window_start, period, calls) VALUES ({m}, {m}, {m}, {m}, {m}, 1) "
    "ON CONFLICT (principal, grant_id, kind, window_start) "
    "DO UPDATE SET calls = grant_usage.calls + 1 WHERE grant_usage.calls < {m}"
)
# Past windows are kept this long after they end, for `usage --all`; the audit log keeps every call.
KEPT_AFTER_END = 31 * 86400
_PRUNE = "DELETE FROM grant_usage WHERE principal = {m} AND grant_id = {m} AND kind = {m} AND window_start < {m}"
_SQLITE_TAKE, _SQLITE_PRUNE = _TAKE.format(m="?"), _PRUNE.format(m="?")
_PG_PRUNE_AND_TAKE = f"WITH pruned AS ({_PRUNE.format(m='%s')}) {_TAKE.format(m='%s')}"
_GIVE_BACK = (
    "UPDATE grant_usage SET calls = calls - 1 "
    "WHERE principal = {m} AND grant_id = {m} AND kind = {m} AND window_start = {m}"
)


def _take(cur: Any, postgres: bool, key: tuple, quota: Quota, cut: int) -> bool:
    """Count one call in the window `key` if it has room (True); drop the counter's windows started before `cut`.

    The drop keeps the table bounded without a job: a range of the primary key, nearly
    always empty. On PostgreSQL it rides in the count's statement (no round trip of its own).
    """
    if postgres:
        cur.execute(_PG_PRUNE_AND_TAKE, (*key[:3], cut, *key, quota.period, quota.calls))
    else:
        cur.execute(_SQLITE_PRUNE, (*key[:3], cut))
        cur.execute(_SQLITE_TAKE, (*key, quota.period, quota.calls))
    return cur.rowcount == 1


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


# The words of a quota's refusal: replay and shadow tell them from the policy's answers by them.
NO_ROOM = "no grant that allows it has room left"
USED_UP = "has used up the quota for"


def is_quota_refusal(reason: str | None) -> bool:
    """Whether an audited refusal was a used-up quota (the policy itself allowed the call)."""
    return reason is not None and (USED_UP in reason or reason.endswith(NO_ROOM))

@dataclass
class QuotaCharge:
    """What one admitted call must be counted against; `refusal` is set by `run` when a quota is used up."""

    principal: str
    target: str
    allowances: tuple[Allowance, ...]
    now: datetime
    # The grant `decide` named; the row names the one counted (or free) on the first side instead.
    decided_by: int | None = None
    refusal: str | None = None
    grant_id: int | None = None

    def run(self, cur: Any, postgres: bool) -> dict[str, Any]:
        """Count the call on `cur` (inside the caller's transaction); return what changes in its decision row.

        When a quota is used up, `refusal` is set and the row becomes that
        refusal; else the row names the grant the call was counted against.
        """
        give_back = _GIVE_BACK.format(m="%s" if postgres else "?")
        # A window started before `cut` ended over KEPT_AFTER_END ago, whatever its period.
        cut = int(self.now.timestamp()) - KEPT_AFTER_END - LONGEST_PERIOD
        taken: list[tuple] = []
        deciding: list[int] = []
        for allowance in self.allowances:
            if allowance.free is not None:
                deciding.append(allowance.free)
                continue
            reset_first: tuple[datetime, int, Quota] | None = None
            for grant_id, quotas in allowance.grants:
                full = None
                mine: list[tuple] = []
                for kind, quota in quotas:
                    start, resets = quota.window(self.now)
                    key = (self.principal, grant_id, kind, start)
                    if not _take(cur, postgres, key, quota, cut):
                        full = (resets, grant_id, quota)
                        break
                    mine.append(key)
                if full is None:
                    taken += mine
                    deciding.append(grant_id)
                    break
                for key in mine:  # this grant's other quota had room: give it back
                    cur.execute(give_back, key)
                if reset_first is None or full[0] < reset_first[0]:
                    reset_first = full
            else:
                # Every limited allow of this side is used up: give back the other sides' counts.
                for key in taken:
                    cur.execute(give_back, key)
                if reset_first is None:  # no allow held after all: refuse rather than guess
                    self.refusal = f"{self.target} is not allowed to {allowance.who}: {NO_ROOM}"
                    return {"decision": "deny", "reason": self.refusal}
                resets, grant_id, quota = reset_first
                self.refusal = (
                    f"{allowance.who} {USED_UP} {self.target} "
                    f"({quota.phrase()}, grant #{grant_id}); it resets at {_when(resets)}"
                )
                return {"decision": "deny", "reason": self.refusal, "grant_id": grant_id}
        self.grant_id = deciding[0] if deciding else None
        if self.grant_id is None or self.grant_id == self.decided_by:
            return {}
        return {"grant_id": self.grant_id, "reason": f"{self.target} is allowed to {self.allowances[0].who} by grant #{self.grant_id}"}


@dataclass(frozen=True)
class UsageRow:
    """Calls counted for one principal against one grant's quota in one window."""

    principal: str
    grant_id: int
    kind: str
    window_start: datetime
    resets_at: datetime
    calls: int
    quota: str | None  # the grant's quota now (None when the grant is gone)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape `mcp-acl usage --json` prints."""
        return {
            "principal": self.principal, "grant": self.grant_id, "kind": self.kind,
            "window_start": self.window_start.isoformat(), "resets_at": self.resets_at.isoformat(),
            "calls": self.calls, "quota": self.quota,
        }


def read_usage(engine: Engine, principal: str | None = None, now: datetime | None = None, history: bool = False) -> list[UsageRow]:
    """Counted calls, by principal, grant and kind; only windows still open at `now` unless `history`."""
    u, g = t.grant_usage, t.grants
    query = (
        select(u, g.c.quota_limit, g.c.quota_rate)
        .select_from(u.outerjoin(g, g.c.id == u.c.grant_id))
        .order_by(u.c.principal, u.c.grant_id, u.c.kind, u.c.window_start)
    )
    if principal is not None:
        query = query.where(u.c.principal == principal)
    if not history:
        seconds = int((now or datetime.now(timezone.utc)).timestamp())
        query = query.where(u.c.window_start + u.c.period > seconds)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    found = []
    for r in rows:
        start = datetime.fromtimestamp(r.window_start, timezone.utc)
        resets = datetime.fromtimestamp(r.window_start + r.period, timezone.utc)
        quota = r.quota_limit if r.kind == "limit" else r.quota_rate
        found.append(UsageRow(r.principal, r.grant_id, r.kind, start, resets, r.calls, quota))
    return found
