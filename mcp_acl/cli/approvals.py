"""Approval commands: `approvals list`, `approvals approve ID [--for 1h]`, `approvals deny ID --reason …`.

The CLI runs as the store's administrator. The approver it records is
`--as NAME`, else the operating-system user. A request whose grant names
approvers (`--approval-by role:lead`) must be answered as a stored user
who is one of them; a grant with plain `--approval` asks an administrator,
which whoever runs this CLI on the database is.
"""

from __future__ import annotations

import getpass
from datetime import datetime, timezone
from typing import Annotated

import typer

from mcp_acl.audit import AuditError
from mcp_acl.cli._common import DatabaseOpt, JsonOpt, cells, engine_for, fail, out, print_json, table
from mcp_acl.policy.approval import approvers_text
from mcp_acl.printable import printable
from mcp_acl.store.approvals import ApprovalError, ApprovalStore, answer, approval_window

approvals_app = typer.Typer(help="Calls held for approval: list them, approve or deny them.", no_args_is_help=True)

AsOpt = Annotated[
    str | None,
    typer.Option("--as", metavar="NAME", help="Who answers (a stored user when the grant names approvers); default: the OS user."),
]


def _approver(name: str | None) -> str:
    if name is not None:
        if not name.strip():
            fail("--as is empty: name who answers")
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        fail("cannot tell who you are: pass --as NAME")


@approvals_app.command("list")
def list_requests(
    everything: Annotated[bool, typer.Option("--all", help="Decided requests too, newest first.")] = False,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the calls waiting for approval, with their arguments.

    Example: mcp-acl approvals list
    """
    with engine_for(database) as engine:
        found = ApprovalStore(engine).listed(pending_only=not everything)
    if as_json:
        print_json([r.as_dict() for r in found])
        return
    now = datetime.now(timezone.utc)
    rows = []
    for r in found:
        status = r.status.replace("_", " ")
        if r.status == "pending" and r.expires_at <= now:
            status = "pending (timed out)"
        details = f"args {r.args_text}; by {approvers_text(r.approval_by)}; grant #{r.grant_id}"
        if r.decided_by:
            details += f"; {status} by {r.decided_by}"
        if r.valid_until:
            details += f" until {r.valid_until.strftime('%Y-%m-%d %H:%M')} UTC"
        rows.append([*cells(r.id, status, r.caller, r.target), printable_text(details)])
    out.print(table("id", "status", "caller", "target", "details", rows=rows, wrap=("details",)))


def printable_text(text: str):
    from rich.text import Text

    return Text(printable(text))


@approvals_app.command("approve")
def approve(
    request_id: Annotated[str, typer.Argument(help="The request's id, as `mcp-acl approvals list` shows it.")],
    for_: Annotated[
        str | None, typer.Option("--for", metavar="SPAN", help="Also let the same user, target and arguments through for this long (30m, 1h, 1d).")
    ] = None,
    as_: AsOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Approve a held call: it is decided again and runs if the policy still allows it.

    Examples:

      mcp-acl approvals approve 3f9c2a7d41be

      mcp-acl approvals approve 3f9c2a7d41be --for 1h --as carol
    """
    now = datetime.now(timezone.utc)
    try:
        window = approval_window(for_, now)
    except ApprovalError as exc:
        fail(str(exc))
    _answer(database, request_id, approve=True, approver=_approver(as_), window=window, reason=None, now=now)


@approvals_app.command("deny")
def deny(
    request_id: Annotated[str, typer.Argument(help="The request's id, as `mcp-acl approvals list` shows it.")],
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (the caller and its model are told).")],
    as_: AsOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Deny a held call: the caller is refused with your reason.

    Example: mcp-acl approvals deny 3f9c2a7d41be --reason "not on production data"
    """
    if not reason.strip():
        fail("--reason is empty: say why")
    _answer(database, request_id, approve=False, approver=_approver(as_), window=None, reason=reason, now=datetime.now(timezone.utc))


def _answer(database, request_id, *, approve, approver, window, reason, now) -> None:
    with engine_for(database) as engine:
        try:
            done = answer(engine, request_id, approve=approve, approver=approver, window=window, reason=reason, now=now)
        except ApprovalError as exc:
            fail(str(exc))
        except AuditError as exc:
            fail(f"nothing was answered: the audit row could not be written: {exc}", code=1)
    said = f"{done.status} {done.id} ({done.caller} {done.target}) as {approver}"
    if done.valid_until:
        said += f"; the same call passes until {done.valid_until.strftime('%Y-%m-%d %H:%M')} UTC"
    out.print(said, highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the approvals commands to the CLI."""
    app.add_typer(approvals_app, name="approvals")
