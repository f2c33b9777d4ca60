"""What the console's pages read: the same functions the CLI answers with, plus a few summaries.

Who-can-do-what lists exactly what `mcp-acl catalogue` lists (the gateway's
own catalogue views on the current policy), and Explain is `mcp-acl check`
(store/questions.py). The summaries (decisions per hour, top refusals) are
plain SQL over the audit table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select

from mcp_acl.audit.chain import canonical_json, timestamp
from mcp_acl.gateway.views import CatalogueViews, Listing, catalogue_identity
from mcp_acl.policy import CompiledPolicy, Grant, Identity, limits, visible
from mcp_acl.policy.compiled import compile_grant
from mcp_acl.policy.model import Effect
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from mcp_acl.store.questions import synthetic_member

ev = t.audit_events


@dataclass(frozen=True)
class ListedTarget:
    """One entry of a catalogue with the grants that allow it and the limits the caller is told."""

    target: str
    grants: tuple[Grant, ...]
    limits: tuple[str, ...]


def allowing_grants(policy: CompiledPolicy, identity: Identity, target: str, now: datetime) -> tuple[Grant, ...]:
    """The live allow grants, on each side of the decision, that cover `target` for `identity`."""
    found: list[Grant] = []
    for side in policy.caller(identity).sides:
        found += [cg.grant for cg in side.matching(target, now) if not cg.deny]
    return tuple(found)


def explained_listing(policy: CompiledPolicy, listing: Listing, identity: Identity, now: datetime) -> list[ListedTarget]:
    """Each listed tool, resource, template and prompt with its allowing grants and limits."""
    targets = (
        [f"tool:{x.name}" for x in listing.tools] + [f"resource:{x.uri}" for x in listing.resources]
        + [f"resource:{x.uri_template}" for x in listing.templates] + [f"prompt:{x.name}" for x in listing.prompts]
    )
    return [
        ListedTarget(target, allowing_grants(policy, identity, target, now), tuple(limits(policy, identity, target, now)))
        for target in targets
    ]


@dataclass(frozen=True)
class Holder:
    """A principal that can see (and so could be allowed) a target."""

    principal: str
    through: str
    grants: tuple[Grant, ...]


def who_can_use(admin: PolicyAdmin, policy: CompiledPolicy, target: str, client: str, issuer: str, scope: str, now: datetime) -> list[Holder]:
    """Every user (through `client`), every role (a synthetic member) and every client (a service token) that may use `target`."""
    found = []
    candidates: list[tuple[str, Identity, str]] = []
    for user in admin.list_users():
        candidates.append((f"user:{user.name}", catalogue_identity(user.name, client, issuer, scope), f"through {client}"))
    for role, _ in admin.list_roles():
        candidates.append((f"role:{role}", Identity(synthetic_member(role), client, frozenset({role}), issuer), f"a member, through {client}"))
    for client_id, _, _ in admin.list_clients():
        candidates.append((f"client:{client_id}", Identity(None, client_id, issuer=issuer), "its own service token"))
    for principal, identity, through in candidates:
        if visible(policy, identity, target, now):
            found.append(Holder(principal, through, allowing_grants(policy, identity, target, now)))
    return found


@dataclass
class CatalogueChange:
    """How one user's catalogue (through a client) would change."""

    user: str
    gained: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


def _names(listing: Listing) -> set[str]:
    return (
        {f"tool:{x.name}" for x in listing.tools} | {f"resource:{x.uri}" for x in listing.resources}
        | {f"resource:{x.uri_template}" for x in listing.templates} | {f"prompt:{x.name}" for x in listing.prompts}
    )


def preview_change(
    views: CatalogueViews, admin: PolicyAdmin, policy: CompiledPolicy, *, add: Grant | None = None, remove: int | None = None,
    client: str, issuer: str, scope: str, now: datetime,
) -> list[CatalogueChange]:
    """Which users' catalogues (through `client`) a grant added or revoked would change, before it is committed.

    The change is applied to a copy of the compiled policy (the same
    incremental update the gateways make), never to the store.
    """
    grants: dict[int, Any] = {}
    if add is not None:
        grants[add.id] = compile_grant(add)
    if remove is not None:
        grants[remove] = None
    after = policy.updated(policy.revision + 1, grants=grants)
    changes = []
    for user in admin.list_users():
        identity = catalogue_identity(user.name, client, issuer, scope)
        before_names, after_names = _names(views.build(policy, identity, now)), _names(views.build(after, identity, now))
        if before_names != after_names:
            changes.append(CatalogueChange(user.name, sorted(after_names - before_names), sorted(before_names - after_names)))
    return changes


def draft_grant(principal: str, target: str, effect: Effect, condition: str | None, note: str | None, expires_at: datetime | None) -> Grant:
    """A grant not stored yet, for a preview (id -1: no stored grant has it)."""
    return Grant(-1, principal, effect, target, condition or None, expires_at=expires_at, note=note or None)


# --- the audit table ---------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """The audit page's filters; empty fields filter nothing."""

    caller: str = ""
    target: str = ""
    result: str = ""
    since: datetime | None = None
    until: datetime | None = None


RESULTS = ("allow", "deny", "ok", "error")


def audit_rows(engine, wanted: AuditFilter, limit: int | None = 200) -> list[dict]:
    """Audit rows matching `wanted`, newest first (at most `limit`)."""
    query = _filtered(select(ev), wanted).order_by(ev.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        row["at"] = timestamp(row["at"])  # as `audit tail --json` and `audit export` write it
    return rows


EXPORT_BATCH = 500


class ExportStopped(RuntimeError):
    """The export failed after some rows were sent; the response must end as a failure, not as a whole file."""


def export_rows(engine, wanted: AuditFilter, batch: int = EXPORT_BATCH) -> Iterator[dict]:
    """Audit rows matching `wanted`, oldest first, read `batch` at a time, so memory stays flat on any log.

    Each batch continues after the last id sent (not by offset, which would
    rescan), and stops at the newest row there was when the export began:
    rows appended meanwhile belong to the next export.
    """
    with engine.connect() as conn:
        last = conn.execute(select(func.max(ev.c.id))).scalar() or 0
    after = 0
    while after < last:
        query = _filtered(select(ev), wanted).where(ev.c.id > after, ev.c.id <= last).order_by(ev.c.id).limit(batch)
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            data = dict(row._mapping)
            data["at"] = timestamp(data["at"])  # as `audit export` writes it
            yield data
        if len(rows) < batch:
            return
        after = rows[-1].id


def export_lines(engine, wanted: AuditFilter, batch: int = EXPORT_BATCH) -> Iterator[str]:
    """The JSON lines of `export_rows` (as `audit export` writes them).

    By the time a read fails, earlier lines are on their way and the
    response's status is sent. So a failure is said in a last line,
    `{"error": …}`, and then ExportStopped is raised, which aborts the
    response (no end of the chunked body): no client takes a cut-off
    export for a whole one.
    """
    try:
        for row in export_rows(engine, wanted, batch):
            yield canonical_json(row) + "\n"
    except Exception as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        problem = f"{exc.__class__.__name__}: {detail[0] if detail else ''}"
        yield canonical_json({"error": f"the export stopped before its end: {problem}"}) + "\n"
        raise ExportStopped(f"the audit export stopped before its end: {problem}") from exc


def _filtered(query, wanted: AuditFilter):
    """`query` narrowed to the rows `wanted` names.

    Caller and target match as substrings of what was typed, literally: with
    autoescape a `%` or `_` typed in a filter (or the escape character
    itself) is that character, not a LIKE wildcard.
    """
    if wanted.caller:
        query = query.where(ev.c.subject.contains(wanted.caller, autoescape=True) | ev.c.client_id.contains(wanted.caller, autoescape=True))
    if wanted.target:
        query = query.where(ev.c.target.contains(wanted.target, autoescape=True))
    if wanted.result in ("allow", "deny"):
        query = query.where(ev.c.decision == wanted.result, ev.c.kind != "outcome")
    elif wanted.result in ("ok", "error"):
        query = query.where(ev.c.outcome == wanted.result)
    if wanted.since is not None:
        query = query.where(ev.c.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(ev.c.at <= wanted.until)
    return query


@dataclass(frozen=True)
class HourBar:
    """One hour of the overview chart."""

    start: datetime
    allowed: int
    refused: int


def decisions_per_hour(engine, now: datetime, hours: int = 24) -> list[HourBar]:
    """Allowed and refused decisions for each of the last `hours` hours, oldest first."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    with engine.connect() as conn:
        rows = conn.execute(
            select(ev.c.at, ev.c.decision).where(ev.c.at >= start, ev.c.decision.is_not(None), ev.c.kind.in_(("decision", "authentication")))
        ).all()
    allowed, refused = [0] * hours, [0] * hours
    for at, decision in rows:
        at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
        slot = int((at - start).total_seconds() // 3600)
        if 0 <= slot < hours:
            (allowed if decision == "allow" else refused)[slot] += 1
    return [HourBar(start + timedelta(hours=i), allowed[i], refused[i]) for i in range(hours)]


def top_refused(engine, column, since: datetime, n: int = 5) -> list[tuple[str, int]]:
    """The `n` values of `column` most often refused since `since`."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(column, func.count()).where(ev.c.decision == "deny", ev.c.at >= since, column.is_not(None))
            .group_by(column).order_by(func.count().desc()).limit(n)
        ).all()
    return [(str(value), count) for value, count in rows]


@dataclass(frozen=True)
class Chart:
    """The overview's bar chart as SVG geometry (drawn by the template; no script)."""

    width: int
    height: int
    bars: list[dict]
    top: int
    labels: list[dict]


def chart(hours: list[HourBar], width: int = 720, height: int = 180) -> Chart:
    """Stacked bars, refused on top of allowed, scaled to the busiest hour."""
    top = max((h.allowed + h.refused for h in hours), default=0) or 1
    plot = height - 20
    step = width / max(len(hours), 1)
    bars, labels = [], []
    for i, h in enumerate(hours):
        x = round(i * step + 1, 1)
        w = round(step - 2, 1)
        a = round(plot * h.allowed / top, 1)
        r = round(plot * h.refused / top, 1)
        bars.append({"x": x, "w": w, "ay": round(plot - a, 1), "ah": a, "ry": round(plot - a - r, 1), "rh": r,
                     "title": f"{h.start:%H}:00 UTC: {h.allowed} allowed, {h.refused} refused"})
        if i % 3 == 0:
            labels.append({"x": round(x + w / 2, 1), "text": f"{h.start:%H}h"})
    return Chart(width, height, bars, top, labels)
