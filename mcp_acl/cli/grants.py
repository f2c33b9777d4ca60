"""Grant commands: grant, revoke, grants (the list) and check (ask the policy)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any

import typer
from rich.text import Text

from mcp_acl.cli._common import DatabaseOpt, JsonOpt, cells, fail, out, policy_admin, print_json, table
from mcp_acl.expiry import ExpiryError, parse_expiry
from mcp_acl.policy import Decision, Effect, Grant, PolicyError, condition_problem, parse_target_pattern
from mcp_acl.policy.approval import approval_spec, approvers_text
from mcp_acl.printable import printable
from mcp_acl.store import PolicyLoader
from mcp_acl.store.questions import Question, ask, resolve

EXIT_DENIED = 1


def grant(
    principal: Annotated[str, typer.Argument(help="Who: user:NAME, role:NAME or client:CLIENT_ID.")],
    target: Annotated[str, typer.Argument(help="What: tool:NAME, resource:URI or prompt:NAME; * and ? are wildcards.")],
    deny: Annotated[bool, typer.Option("--deny", help="Deny instead of allow; a deny always beats an allow.")] = False,
    when: Annotated[str | None, typer.Option("--when", metavar="CEL", help="A CEL condition over args, user, client, now.")] = None,
    note: Annotated[str | None, typer.Option("--note", metavar="TEXT", help="A sentence saying what the grant is for (shown to the model).")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", metavar="WHEN", help="A duration from now (30m, 2h, 7d, 1w) or an ISO 8601 time (UTC unless it has an offset).")
    ] = None,
    limit: Annotated[str | None, typer.Option("--limit", metavar="N/UNIT", help="A quota: at most N calls per sec, min, hour, day or week (e.g. 100/day), per user and grant.")] = None,
    rate: Annotated[str | None, typer.Option("--rate", metavar="N/UNIT", help="A rate: at most N calls per window (e.g. 10/min), per user and grant.")] = None,
    approval: Annotated[bool, typer.Option("--approval", help="Hold each call it allows until a person approves it (mcp-acl approvals).")] = False,
    approval_by: Annotated[
        list[str] | None, typer.Option("--approval-by", metavar="P", help="Who may approve: user:NAME or role:NAME (repeatable; implies --approval); default: an administrator.")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Allow (or with --deny, forbid) a principal to use a target; prints the new grant's id.

    Examples:

      mcp-acl grant role:analyst 'tool:files.*' --note "analysts read files"

      mcp-acl grant role:analyst tool:sql.select --approval --approval-by role:lead

      mcp-acl grant user:bob tool:files.write --when 'args.path.startsWith("tmp/")' --expires 7d

      mcp-acl grant role:analyst tool:sql.query --limit 100/day --rate 10/min
    """
    if when is not None and not when.strip():
        # An empty condition would silently store an unconditional grant.
        fail("--when is empty: leave it out for a grant without a condition")
    expires_at = None
    if expires is not None:
        try:
            expires_at = parse_expiry(expires, datetime.now(timezone.utc))
        except ExpiryError as exc:
            fail(f"--expires: {exc}")
    held = None
    if approval or approval_by:
        try:
            held = approval_spec(approval_by or ())
        except PolicyError as exc:
            fail(f"--approval-by: {exc}")
    with policy_admin(database) as admin:
        grant_id = admin.add_grant(
            principal, target, Effect.DENY if deny else Effect.ALLOW, when, note, expires_at, limit=limit, rate=rate, approval_by=held
        )
    out.print(grant_id)


def revoke(
    grant_id: Annotated[int, typer.Argument(help="The grant's id, as `mcp-acl grants` lists it.")],
    database: DatabaseOpt = None,
) -> None:
    """Delete a grant; the very next decision no longer sees it.

    Example: mcp-acl revoke 7
    """
    with policy_admin(database) as admin:
        gone = admin.revoke(grant_id)
    out.print(f"revoked {printable(gone.describe())}", highlight=False, markup=False, soft_wrap=True)


def grant_as_dict(g: Grant) -> dict[str, Any]:
    """The JSON shape `mcp-acl grants --json` prints per grant."""
    return {
        "id": g.id,
        "principal": g.principal,
        "effect": g.effect.value,
        "target": g.target,
        "when": g.condition,
        # Set for a row stored before conditions were type-checked: it errors on every call.
        "problem": condition_problem(g.condition) if g.condition else None,
        "note": g.note,
        "expires": g.expires_at.isoformat() if g.expires_at else None,
        "limit": g.limit,
        "rate": g.rate,
        "created_by": g.created_by,
        "created_at": g.created_at.isoformat() if g.created_at else None,
        "approval_by": g.approval_by,
    }


def grants(
    principal: Annotated[str | None, typer.Option("--principal", metavar="P", help="Only grants to exactly this principal.")] = None,
    target: Annotated[str | None, typer.Option("--target", metavar="T", help="Only grants on T: its own pattern, patterns covering it, and (if T has wildcards) grants under it.")] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List grants, oldest first.

    Example: mcp-acl grants --target tool:files.read --json
    """
    with policy_admin(database) as admin:
        if principal:
            # An unknown principal has no grants; say so rather than list nothing.
            admin.require_principal(principal)
        if target:
            parse_target_pattern(target)
        found = admin.list_grants(principal, target)
    if as_json:
        print_json([grant_as_dict(g) for g in found])
        return
    now = datetime.now(timezone.utc)
    rows = [[*cells(g.id, g.effect.value, g.principal, g.target), _details(g, now)] for g in found]
    out.print(table("id", "effect", "principal", "target", "details", rows=rows, wrap=("details",)))


def _details(g: Grant, now: datetime) -> Text:
    # One wrapping column keeps the table readable in 80 columns.
    # Joined by real newlines after each part is escaped (cells() would escape the joins too).
    lines = [f"when {g.condition}"] if g.condition else []
    problem = condition_problem(g.condition) if g.condition else None
    if problem:
        # Stored before conditions were checked: it errors on every call, and
        # an erroring condition fails closed (an allow never holds, a deny always does).
        lines.append(f"BROKEN: {problem}")
    if g.expires_at is not None:
        past = " (past)" if g.expires_at <= now else ""
        lines.append(f"expires {g.expires_at.strftime('%Y-%m-%d %H:%M')} UTC{past}")
    if g.limit or g.rate:
        lines.append(" ".join(f"{kind} {value}" for kind, value in (("limit", g.limit), ("rate", g.rate)) if value))
    if g.note:
        lines.append(f"note: {g.note}")
    if g.approval_by is not None:
        lines.append(f"each call needs approval by {approvers_text(g.approval_by)}")
    return Text("\n".join(printable(line) for line in lines))


def _parse_args(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"--args is not valid JSON: {exc}")
    if not isinstance(value, dict):
        fail(f"--args must be a JSON object such as '{{\"path\": \"reports/q3.md\"}}', not {type(value).__name__}")
    return value


def show_decision(decision: Decision, as_role: str | None) -> None:
    """Print a decision for a person: the answer, the reason, the deciding grant."""
    lines = [("allowed" if decision.allowed else "denied", decision.reason)]
    if as_role:
        lines.append(("as", f"a synthetic user holding only role {as_role}"))
    if decision.grant is not None:
        g = decision.grant
        lines.append(("grant", g.describe() + (f" ({g.note})" if g.note else "")))
    if decision.allowed and decision.grant is not None and decision.grant.approval_by is not None:
        lines.append(("held", f"until approved by {approvers_text(decision.grant.approval_by)} (mcp-acl approvals)"))
    lines.append(("revision", str(decision.revision)))
    for label, value in lines:
        out.print(f"{label:<9}{printable(value)}", highlight=False, markup=False, soft_wrap=True)


def check(
    principal: Annotated[str | None, typer.Argument(help="user:NAME, client:ID (a service token) or role:NAME (a synthetic member); with --token, leave it out.", show_default=False)] = None,
    target: Annotated[str | None, typer.Argument(help="A concrete target: tool:NAME, resource:URI or prompt:NAME.", show_default=False)] = None,
    client: Annotated[str | None, typer.Option("--client", metavar="CLIENT_ID", help="Decide as if the user acts through this client.")] = None,
    args: Annotated[str | None, typer.Option("--args", metavar="JSON", help="The call's arguments, as a JSON object.")] = None,
    token: Annotated[str | None, typer.Option("--token", metavar="TOKEN", help="Decide as the caller of this access token (its user, client and narrowing); then give only the target.")] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask the policy whether a principal may use a target now; exit 0 if allowed, 1 if denied.

    Examples:

      mcp-acl check user:alice tool:files.read --args '{"path": "reports/q3.md"}'

      mcp-acl check role:analyst tool:files.write --client report-agent --json

      mcp-acl check --token "$TOKEN" tool:files.read --args '{"path": "reports/q3.md"}'
    """
    if token is not None:
        _check_token(principal, target, client, token, _parse_args(args), database, as_json)
        return
    if principal is None or target is None:
        fail("name a principal and a target, e.g. `mcp-acl check user:alice tool:files.read` (or `check --token TOKEN TARGET`)")
    question = Question(principal, target, _parse_args(args), client)
    with policy_admin(database) as admin:
        asker = resolve(admin, question)
        decision = ask(PolicyLoader(admin.engine).current(), asker, question, datetime.now(timezone.utc))
    if as_json:
        print_json(decision.as_dict())
    else:
        show_decision(decision, asker.as_role)
    if not decision.allowed:
        raise typer.Exit(EXIT_DENIED)


def _check_token(
    first: str | None, second: str | None, client: str | None, token: str, args: dict | None, database: str | None, as_json: bool,
) -> None:
    # `check --token TOKEN TARGET`: the token says who; its narrowing counts (cli/token_identity.py).
    from mcp_acl.cli.token_identity import decide_as_token, token_caller_line

    if first is None or second is not None:
        fail("with --token give only the target: `mcp-acl check --token TOKEN tool:NAME`")
    if client is not None:
        fail("--token names its own client: leave out --client")
    decision, identity = decide_as_token(database, token, first, args)
    if as_json:
        narrowing = identity.narrowing.as_details() if identity.narrowing is not None else None
        print_json({**decision.as_dict(), "narrowing": narrowing})
    else:
        out.print(f"{'token':<9}{printable(token_caller_line(identity))}", highlight=False, markup=False, soft_wrap=True)
        show_decision(decision, None)
    if not decision.allowed:
        raise typer.Exit(EXIT_DENIED)


def register(app: typer.Typer) -> None:
    """Add grant, revoke, grants and check to the CLI."""
    for command in (grant, revoke, grants, check):
        app.command()(command)
