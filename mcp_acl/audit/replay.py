"""`mcp-acl policy replay`: the audited calls decided again under a candidate policy.

Each decision row keeps who called (subject, client, issuer), the action,
the target, the decision with its reason and grant, the revision, the
time, and a digest of the arguments, never the arguments themselves. So a
row is decided again as `mcp-acl check` decides (decide() on the compiled
candidate, as the stored user with the candidate's roles, through the
row's client, at the row's time), with these limits:

- arguments: a row whose call had none (or empty ones) is decided in
  full; any other row is decided only when no condition over `args` can
  change the answer (policy/replay.py), else it is *undecidable* and
  reported as such, never guessed;
- roles a token claim mapped (`MCP_ACL_ROLES_CLAIM`) are not recorded:
  replay sees the candidate's stored memberships only;
- rows that were not the policy's answer (an unknown target, the policy
  unreadable, a policy that kept changing) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from mcp_acl.audit.chain import args_digest, timestamp
from mcp_acl.audit.flips import EXAMPLES, Flip, FlipGroup, group_flips
from mcp_acl.gateway.reasons import UNAVAILABLE, UNSETTLED
from mcp_acl.policy.narrowing import is_narrowing_refusal
from mcp_acl.store.usage import is_quota_refusal
from mcp_acl.policy import CompiledPolicy, Decision, Identity, decide
from mcp_acl.policy.replay import decide_without_args
from mcp_acl.store import tables as t
from mcp_acl.store.candidate import label
from mcp_acl.store.loader import grant_from_row

_BATCH = 1000
# The digest of `{}`: a call made with no arguments is known in full.
NO_ARGS = args_digest({})
ev = t.audit_events


@dataclass
class Undecidable:
    """Rows of one target whose answer under the candidate depends on arguments the log does not keep."""

    target: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "calls": self.count, "examples": self.examples}


@dataclass
class ReplayReport:
    """What replay found: counts, the flips grouped, the undecidable rows grouped by target."""

    since: datetime | None
    rows: int = 0
    decided: int = 0
    skipped: int = 0
    flips: list[FlipGroup] = field(default_factory=list)
    undecidable: list[Undecidable] = field(default_factory=list)

    @property
    def flipped(self) -> int:
        return sum(g.count for g in self.flips)

    @property
    def undecided(self) -> int:
        return sum(u.count for u in self.undecidable)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None, "rows": self.rows, "decided": self.decided,
            "flipped": self.flipped, "undecidable": self.undecided, "skipped": self.skipped,
            "flips": [g.as_dict() for g in self.flips], "undecidable_targets": [u.as_dict() for u in self.undecidable],
        }


def row_identity(row: Any) -> Identity:
    """The caller of a decision row, as `check` would name it (stored roles only)."""
    return Identity(row.subject, client_id=row.client_id, issuer=row.issuer)


def is_policy_answer(row: Any) -> bool:
    """False for decision rows the policy did not decide: unknown target, policy unreadable or unsettled,
    a used-up quota (the policy allowed it; the count refused it), a narrowed token's refusal (the row
    keeps no narrowing to decide it again with)."""
    return (
        row.target is not None and row.reason not in (UNAVAILABLE, UNSETTLED)
        and row.reason != f"{row.target} does not exist"
        and not is_quota_refusal(row.reason) and not is_narrowing_refusal(row.reason)
    )


def redecide(candidate: CompiledPolicy, row: Any) -> Decision | None:
    """The candidate's decision for a recorded call, or None when it depends on unrecorded arguments."""
    identity = row_identity(row)
    if row.args_digest is None or row.args_digest == NO_ARGS:
        return decide(candidate, identity, row.target, {}, row.at)
    return decide_without_args(candidate, identity, row.target, row.at)


def _rows(engine: Engine, since: datetime | None) -> Iterator[Any]:
    after = 0
    while True:
        query = select(ev).where(ev.c.kind == "decision", ev.c.id > after).order_by(ev.c.id).limit(_BATCH)
        if since is not None:
            query = query.where(ev.c.at >= since)
        with engine.connect() as conn:
            batch = conn.execute(query).all()
        yield from batch
        if len(batch) < _BATCH:
            return
        after = batch[-1].id


def stored_grant_labels(engine: Engine, ids: set[int]) -> dict[int, str]:
    """Stored grants by id, described (`#4 allow role:intern tool:files.list`), or marked no longer stored."""
    with engine.connect() as conn:
        found = {r.id: grant_from_row(r).describe() for r in conn.execute(select(t.grants).where(t.grants.c.id.in_(ids)))} if ids else {}
    return {i: found.get(i, f"#{i} (no longer stored)") for i in ids}


def replay(engine: Engine, candidate: CompiledPolicy, since: datetime | None = None) -> ReplayReport:
    """Decide every audited call since `since` again under `candidate` and group what flips."""
    report = ReplayReport(since)
    flipped: list[tuple[Any, Decision]] = []
    undecidable: dict[str, Undecidable] = {}
    for row in _rows(engine, since):
        report.rows += 1
        if not is_policy_answer(row):
            report.skipped += 1
            continue
        decision = redecide(candidate, row)
        if decision is None:
            group = undecidable.setdefault(row.target, Undecidable(row.target))
            group.count += 1
            if len(group.examples) < EXAMPLES:
                group.examples.append({"audit_id": row.id, "at": timestamp(row.at), "subject": row.subject, "client": row.client_id, "was": row.decision})
            continue
        report.decided += 1
        if decision.allowed != (row.decision == "allow"):
            flipped.append((row, decision))
    stored = stored_grant_labels(engine, {row.grant_id for row, _ in flipped if row.grant_id is not None})
    report.flips = group_flips(
        Flip(row.id, timestamp(row.at), row.subject, row.client_id, row.action, row.target, row.decision,
             stored.get(row.grant_id), row.reason, label(decision.grant), decision.reason)
        for row, decision in flipped
    )
    report.undecidable = sorted(undecidable.values(), key=lambda u: u.target)
    return report
