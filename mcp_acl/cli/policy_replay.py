"""`mcp-acl policy replay` and `policy shadow`: what a candidate policy would decide differently.

Replay decides the audited calls again (audit/replay.py); shadow decides
the live calls twice (store/shadow.py, gateway/shadow.py). Both print the
flips grouped by target and deciding grants (audit/flips.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from mcp_acl.audit.chain import timestamp
from mcp_acl.audit.flips import Flip, FlipGroup, describe_group, group_flips
from mcp_acl.audit.replay import ReplayReport, replay, stored_grant_labels
from mcp_acl.cli._common import DatabaseOpt, JsonOpt, fail, out, policy_admin, print_json
from mcp_acl.cli.policy_files import EXIT_FAILED, _read, policy_app
from mcp_acl.expiry import ExpiryError, parse_duration, parse_instant
from mcp_acl.printable import printable
from mcp_acl.store.candidate import load_candidate
from mcp_acl.store.shadow import ShadowInfo, latest_shadow, read_differences, set_shadow, stop_shadow


def _since(text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    span = parse_duration(text)
    if span is not None:
        return now - span
    try:
        return parse_instant(text)
    except ExpiryError as exc:
        fail(f"--since: {exc} (give a duration such as 7d or 12h, or an ISO 8601 time)")


def say(line: str) -> None:
    """One line of a report, printed as it is (names may hold markup-like text)."""
    out.print(printable(line), highlight=False, markup=False, soft_wrap=True)


def print_replay(report: ReplayReport, source: str) -> None:
    """The text `policy replay` prints."""
    since = f" since {report.since.isoformat(timespec='seconds')}" if report.since else ""
    say(
        f"replayed {report.rows} audited call{'' if report.rows == 1 else 's'}{since} against {source}: "
        f"{report.decided} decided, {report.flipped} would flip, {report.undecided} undecidable, {report.skipped} skipped"
    )
    for group in report.flips:
        say("")
        for line in describe_group(group):
            say(line)
    if report.undecidable:
        say("")
        say("undecidable (the answer depends on arguments, and the audit log keeps only their digest):")
        for u in report.undecidable:
            say(f"  {u.target}  ({u.count} call{'' if u.count == 1 else 's'})")


@policy_app.command("replay")
def replay_command(
    candidate: Annotated[Path, typer.Argument(help="A policy file (the format `policy export` writes), taken as the whole policy.")],
    since: Annotated[str | None, typer.Option("--since", metavar="WHEN", help="Only calls since then: a duration back from now (7d, 12h) or an ISO 8601 time.")] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide the audited calls again under a candidate policy; exit 1 if any decision would flip.

    Prints, per target and deciding grants, the calls that would go from
    allow to deny or deny to allow, with examples. Calls whose answer
    depends on arguments the audit log does not keep are listed as
    undecidable (they do not change the exit status).

    Example: mcp-acl policy replay candidate.yaml --since 7d
    """
    text = _read(candidate)
    start = _since(since, datetime.now(timezone.utc))
    with policy_admin(database) as admin:
        policy = load_candidate(text, str(candidate))
        report = replay(admin.engine, policy, start)
    if as_json:
        print_json(report.as_dict())
    else:
        print_replay(report, str(candidate))
    if report.flips:
        raise typer.Exit(EXIT_FAILED)


def _shadow_flips(engine, shadow_id: int) -> list[FlipGroup]:
    rows = read_differences(engine, shadow_id)
    stored = stored_grant_labels(engine, {r.grant_id for r in rows if r.grant_id is not None})
    return group_flips(
        Flip(r.audit_id, timestamp(r.at), r.subject, r.client_id, r.action, r.target, r.decision,
             stored.get(r.grant_id), r.reason, r.shadow_grant, r.shadow_reason)
        for r in rows
    )


def _shadow_line(info: ShadowInfo) -> str:
    state = f"stopped {info.stopped_at.isoformat(timespec='seconds')}" if info.stopped_at else "in force"
    return f"shadow policy #{info.id} ({info.source}), set {info.started_at.isoformat(timespec='seconds')}, {state}"


@policy_app.command("shadow")
def shadow_command(
    what: Annotated[str | None, typer.Argument(
        metavar="[CANDIDATE.yaml|off|report]",
        help="A policy file to decide every call under as well (never enforced); `off` to stop; `report` for the differences.",
    )] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide every call under a candidate policy too, without enforcing it, and record where it differs.

    The candidate goes to the database, so every gateway replica picks it
    up with its next decision. `policy shadow report` prints the calls it
    decided otherwise, grouped like `policy replay` (exit 1 if there are
    any); `policy shadow` alone says which candidate is in force.

    Examples:

      mcp-acl policy shadow candidate.yaml

      mcp-acl policy shadow report --json

      mcp-acl policy shadow off
    """
    text = _read(Path(what)) if what not in (None, "off", "report") else None
    with policy_admin(database) as admin:
        if text is not None:
            shadow_id = set_shadow(admin, text, what)
            say(f"shadow policy #{shadow_id} ({what}) is in force: every call is decided under it too, never enforced")
            return
        if what == "off":
            stopped = stop_shadow(admin)
            say(f"stopped shadow policy #{stopped.id} ({stopped.source})" if stopped else "no shadow policy is in force")
            return
        info = latest_shadow(admin.engine)
        if info is None:
            if as_json:
                print_json({"shadow": None, "flips": []})
            else:
                say("no shadow policy has been set (mcp-acl policy shadow CANDIDATE.yaml)")
            return
        groups = _shadow_flips(admin.engine, info.id) if what == "report" else None
    if groups is None:
        if as_json:
            print_json({"shadow": info.as_dict()})
        else:
            say(_shadow_line(info))
        return
    if as_json:
        print_json({"shadow": info.as_dict(), "flipped": sum(g.count for g in groups), "flips": [g.as_dict() for g in groups]})
    else:
        flipped = sum(g.count for g in groups)
        say(f"{_shadow_line(info)}: {flipped} call{'' if flipped == 1 else 's'} decided otherwise")
        for group in groups:
            say("")
            for line in describe_group(group):
                say(line)
    if groups:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Nothing to add: these commands join the `policy` group, which policy_files registers."""
