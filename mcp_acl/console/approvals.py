"""The console's approvals page: the calls held for approval, approved or denied by the signed-in admin.

Answering is `mcp-acl approvals approve/deny`'s own store operation
(`store.approvals.answer`) with the admin as the approver, under the same
rules: a grant's named approvers must include the admin's stored user (or
a role they hold), and no one answers their own call. It runs inside
`audited_change` like every console change, and its commit wakes the held
call as the CLI's does (NOTIFY on PostgreSQL, the database's files on SQLite).
"""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mcp_acl.audit import AuditError
from mcp_acl.console.actions import CHANGE_ERRORS, _change
from mcp_acl.console.context import CONSOLE_CLIENT, Console
from mcp_acl.console.cookies import ConsoleSession
from mcp_acl.console.guard import admin_action, admin_page
from mcp_acl.policy.approval import approvers_text
from mcp_acl.store.approvals import ApprovalError, ApprovalStore, answer, approval_window

# The console has no --as: the approver is whoever signed in.
NOT_AN_APPROVER = " (sign in to the console as one of them, or answer with `mcp-acl approvals … --as NAME`)"


@admin_page
async def approvals(console: Console, request: Request, session: ConsoleSession) -> Response:
    return await approvals_page(console, request, session)


async def approvals_page(console: Console, request: Request, session: ConsoleSession, status: int = 200, **extra) -> Response:
    rows = await run_in_threadpool(ApprovalStore(console.engine).listed)
    return console.render(
        request, "approvals.html", status, session=session, rows=rows, now=datetime.now(timezone.utc),
        approvers_text=approvers_text, **extra,
    )


@admin_action
async def approval_answer(console: Console, request: Request, session: ConsoleSession, form: dict[str, str]) -> Response:
    request_id, decision = form.get("request", "").strip(), form.get("decision", "")
    span, reason = form.get("for", "").strip() or None, form.get("reason", "").strip()
    if decision not in ("approve", "deny"):
        return await approvals_page(console, request, session, 400, problem="Choose approve or deny.")
    approve = decision == "approve"
    now = datetime.now(timezone.utc)
    try:
        if not approve and not reason:
            raise ApprovalError("a denial needs a reason: the caller and its model are told it")
        window = approval_window(span, now) if approve else None
    except ApprovalError as exc:
        return await approvals_page(console, request, session, 400, problem=str(exc).replace("--for ", "for "))
    what = f"{decision} approval request {request_id}" + (f" for {span}" if window else "") + (f": {reason}" if reason else "")
    args = {"request": request_id, "decision": decision, "for": span if window else None, "reason": reason or None}
    def said(done) -> str:
        text = f"{done.status} {done.id} ({done.caller} {done.target})"
        if done.valid_until:
            text += f"; the same call passes until {done.valid_until.strftime('%Y-%m-%d %H:%M')} UTC"
        return text

    return await _change(
        console, request, session, f"approval {decision}", what, args,
        lambda admin: answer(
            console.engine, request_id, approve=approve, approver=session.subject, admin=True, window=window,
            reason=reason or None, now=now, client_id=CONSOLE_CLIENT, retry_hint=NOT_AN_APPROVER,
        ),
        "/approvals", said, lambda problem: approvals_page(console, request, session, 400, problem=problem),
        errors=(*CHANGE_ERRORS, AuditError),
    )
