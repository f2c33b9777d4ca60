"""Approval requests in SQL: a held call waits on its row; any replica and the CLI see it.

A request is `pending` from the moment a gateway holds a call until an
approver approves or denies it or the gateway times it out; each of these
moves is one conditional UPDATE (`WHERE status = 'pending'`), so the first
one wins and the others find nothing to change. Approving or denying sends
the same commit signal as a policy change (store/commits.py), so the
holding gateway wakes at once; it polls as well.

The arguments are kept (as JSON) only while the request is pending, for
the approver to read; a decided request keeps just their digest.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update

from mcp_acl.audit.chain import args_digest, canonical_json
from mcp_acl.expiry import parse_duration
from mcp_acl.policy import Grant, Identity
from mcp_acl.policy.approval import approvers_text, may_approve
from mcp_acl.store import tables as t
from mcp_acl.store.commits import notify_policy_changed

ar = t.approval_requests

PENDING, APPROVED, DENIED, TIMED_OUT = "pending", "approved", "denied", "timed_out"
# An approval without a window, once the call it was given for has been released: it lets nothing else through.
USED = "used"


class ApprovalError(ValueError):
    """An approval or denial that cannot be made as asked (nothing was written)."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ApprovalRequest:
    """One held call as stored."""

    id: str
    status: str
    grant_id: int
    grant_created_at: datetime | None
    approval_by: str
    subject: str | None
    client_id: str | None
    action: str
    target: str
    args_digest: str
    args: dict[str, Any] | None
    created_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    valid_until: datetime | None
    decision_audit_id: int | None

    @property
    def caller(self) -> str:
        """`user:alice through client:agent`, or the client alone."""
        if self.subject is None:
            return f"client:{self.client_id}"
        return f"user:{self.subject}" + (f" through client:{self.client_id}" if self.client_id else "")

    @property
    def args_text(self) -> str:
        """The arguments as `approvals list` and the console show them to approvers."""
        return json.dumps(self.args, ensure_ascii=False) if self.args is not None else "(kept only while pending)"

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape `mcp-acl approvals list --json` prints."""
        return {
            "id": self.id, "status": self.status, "grant": self.grant_id, "approval_by": self.approval_by,
            "user": self.subject, "client": self.client_id, "action": self.action, "target": self.target,
            "args": self.args, "args_digest": self.args_digest,
            "created_at": self.created_at.isoformat(), "expires_at": self.expires_at.isoformat(),
            "decided_by": self.decided_by, "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "reason": self.reason, "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }


def _from_row(row) -> ApprovalRequest:
    args = None
    if row.args is not None:
        try:
            args = json.loads(row.args)
        except ValueError:
            args = None
    return ApprovalRequest(
        id=row.id, status=row.status, grant_id=row.grant_id, grant_created_at=row.grant_created_at,
        approval_by=row.approval_by, subject=row.subject, client_id=row.client_id, action=row.action,
        target=row.target, args_digest=row.args_digest, args=args, created_at=row.created_at,
        expires_at=row.expires_at, decided_by=row.decided_by, decided_at=row.decided_at, reason=row.reason,
        valid_until=row.valid_until, decision_audit_id=row.decision_audit_id,
    )


def digest_of(args: dict[str, Any] | None) -> str:
    """The digest that matches a call's arguments to a request (the audit log's own)."""
    return args_digest(args if args is not None else {}) or ""


class ApprovalStore:
    """Reads and moves approval requests."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, *, identity: Identity, session_id: str | None, action: str, target: str, args: dict[str, Any] | None,
        grant: Grant, expires_at: datetime, decision_audit_id: int | None, now: datetime | None = None,
    ) -> ApprovalRequest:
        """Store a new pending request for a held call and return it."""
        now = now or utcnow()
        request_id = secrets.token_hex(6)
        values = {
            "id": request_id, "status": PENDING, "grant_id": grant.id, "grant_created_at": grant.created_at,
            "approval_by": grant.approval_by, "issuer": identity.issuer, "subject": identity.subject,
            "client_id": identity.client_id, "session_id": session_id, "action": action, "target": target,
            "args_digest": digest_of(args), "args": canonical_json(args if args is not None else {}),
            "decision_audit_id": decision_audit_id, "created_at": now, "expires_at": expires_at,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(ar).values(**values))
        return self.get(request_id)

    def get(self, request_id: str) -> ApprovalRequest | None:
        """One request by id, or None."""
        if not isinstance(request_id, str) or not 0 < len(request_id) <= 32:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(ar).where(ar.c.id == request_id)).first()
        return _from_row(row) if row else None

    def listed(self, *, pending_only: bool = True, limit: int = 200) -> list[ApprovalRequest]:
        """Requests, newest first: the pending ones, or all."""
        query = select(ar).order_by(ar.c.created_at.desc()).limit(limit)
        if pending_only:
            query = query.where(ar.c.status == PENDING)
        with self.engine.connect() as conn:
            return [_from_row(r) for r in conn.execute(query)]

    def standing(self, identity: Identity, target: str, args: dict[str, Any] | None, grant: Grant, now: datetime) -> ApprovalRequest | None:
        """An approval still in its window for the same user (or client), target, arguments and grant."""
        conditions = [
            ar.c.status == APPROVED, ar.c.args_digest == digest_of(args), ar.c.target == target,
            ar.c.grant_id == grant.id, ar.c.valid_until > now,
        ]
        if identity.subject is not None:
            conditions.append(ar.c.subject == identity.subject)
        else:  # a service token: the same client on its own
            conditions += [ar.c.subject.is_(None), ar.c.client_id == identity.client_id]
        query = select(ar).where(*conditions).order_by(ar.c.valid_until.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        found = _from_row(row) if row else None
        # Only under the very grant it was given for: a grant revoked and made again is a new grant.
        if found is not None and found.grant_created_at != grant.created_at:
            return None
        return found

    def claim(self, request_id: str, now: datetime) -> bool:
        """Take an approval for one release: a one-time approval is used up (only the first claim wins;
        a replayed requestState gets nothing); one with a window serves until the window closes."""
        with self.engine.begin() as conn:
            once = conn.execute(
                update(ar).where(and_(ar.c.id == request_id, ar.c.status == APPROVED, ar.c.valid_until.is_(None))).values(status=USED)
            ).rowcount
            if once:
                return True
            row = conn.execute(select(ar.c.status, ar.c.valid_until).where(ar.c.id == request_id)).first()
        return row is not None and row.status == APPROVED and row.valid_until is not None and row.valid_until > now

    def take_prepaid(self, request_id: str, now: datetime) -> bool:
        """Take the count made when the held call was asked for, for one run: only the first taker gets it
        (a release or a retry naming the request); every later one must be counted on its own."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(ar).where(and_(ar.c.id == request_id, ar.c.prepaid_taken_at.is_(None))).values(prepaid_taken_at=now)
            ).rowcount
        return taken == 1

    def decide(
        self, request_id: str, status: str, *, by: str | None, reason: str | None = None,
        valid_until: datetime | None = None, now: datetime | None = None,
    ) -> ApprovalRequest:
        """Move a pending request to `status`; ApprovalError when it is not pending (any more)."""
        now = now or utcnow()
        still = [ar.c.id == request_id, ar.c.status == PENDING]
        if status == APPROVED:
            still.append(ar.c.expires_at > now)  # a request whose call gave up waiting cannot be approved
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(ar).where(and_(*still)).values(
                    status=status, decided_by=by, decided_at=now, reason=reason, valid_until=valid_until, args=None,
                )
            ).rowcount
            if moved:
                # Wake the holding gateway now (PostgreSQL: NOTIFY; SQLite's commit is seen in its files).
                notify_policy_changed(conn)
        found = self.get(request_id)
        if found is None:
            raise ApprovalError(f"no approval request {request_id!r} (see `mcp-acl approvals list`)")
        if not moved:
            state = "past its time-out" if found.status == PENDING else found.status.replace("_", " ")
            raise ApprovalError(f"approval request {request_id} is {state}, no longer pending")
        return found


def approval_window(span: str | None, now: datetime) -> datetime | None:
    """Until when an approval given `--for span` (30m, 1h, 1d) lets the same call through; None without one."""
    if span is None:
        return None
    length = parse_duration(span)
    if not length:
        raise ApprovalError(f"--for {span!r}: give a duration such as 30m, 1h or 1d")
    return now + length


def answer(
    engine: Engine, request_id: str, *, approve: bool, approver: str, admin: bool = True,
    window: datetime | None = None, reason: str | None = None, now: datetime | None = None,
    client_id: str = "mcp-acl-cli", retry_hint: str = " (answer as one of them with --as NAME)",
) -> ApprovalRequest:
    """An approver approves (until `window`, for the same call again) or denies a pending request.

    `approver` is the person answering; `admin` says whether they administer
    the store (the local CLI's operator does), which is what a request whose
    grant names no approvers asks for. A grant's named approvers must match
    the approver as a stored user (user:NAME, or a role:R they hold). No one
    approves their own call. The audit row is written before the request
    moves: an approval nobody could trace is never given. `client_id` names
    where it was answered (the CLI, or the console: mcp_acl/console).
    """
    from mcp_acl.audit import AuditLog  # the audit package imports the store

    now = now or utcnow()
    store = ApprovalStore(engine)
    found = store.get(request_id)
    if found is None:
        raise ApprovalError(f"no approval request {request_id!r} (see `mcp-acl approvals list`)")
    if found.status != PENDING:
        raise ApprovalError(f"approval request {found.id} is {found.status.replace('_', ' ')}, no longer pending")
    if approve and found.expires_at <= now:
        raise ApprovalError(f"approval request {found.id} is past its time-out: the call no longer waits")
    if found.subject is not None and approver == found.subject:
        raise ApprovalError(f"{approver} asked for approval request {found.id} and cannot answer it")
    with engine.connect() as conn:
        roles = set(conn.execute(select(t.role_members.c.role_name).where(t.role_members.c.user_name == approver)).scalars())
        grant = conn.execute(select(t.grants.c.id, t.grants.c.created_at).where(t.grants.c.id == found.grant_id)).first()
    if not may_approve(found.approval_by, approver, roles, admin=admin):
        raise ApprovalError(
            f"approval request {found.id} must be answered by {approvers_text(found.approval_by)}; {approver} is not{retry_hint}"
        )
    if approve and (grant is None or grant.created_at != found.grant_created_at):
        raise ApprovalError(f"grant #{found.grant_id}, under which request {found.id} was made, is gone: nothing to approve")
    verb = "approved" if approve else "denied"
    said = f"approval request {found.id} ({found.caller}): {verb} by {approver}"
    if window is not None:
        said += f", and the same call again until {window.isoformat(timespec='seconds')}"
    if reason:
        said += f": {reason}"
    AuditLog(engine).record_hold(
        action=f"approval/{'approve' if approve else 'deny'}", target=found.target, decision="allow" if approve else "deny",
        ref_id=found.decision_audit_id, subject=approver, client_id=client_id, grant_id=found.grant_id, reason=said,
    )
    return store.decide(found.id, APPROVED if approve else DENIED, by=approver, reason=reason, valid_until=window, now=now)
