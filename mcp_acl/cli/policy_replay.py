"""`mcp-acl policy replay` and `policy shadow`: what a candidate policy would decide differently."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from mcp_acl.audit.flips import describe_group
from mcp_acl.audit.replay import ReplayReport, replay
from mcp_acl.cli._common import DatabaseOpt, JsonOpt, fail, out, policy_admin, print_json
from mcp_acl.cli.policy_files import EXIT_FAILED, _read, policy_app
from mcp_acl.expiry import ExpiryError, parse_duration, parse_instant
from mcp_acl.printable import printable
from mcp_acl.store.candidate import load_candidate


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


def register(app: typer.Typer) -> None:
    """Nothing to add: these commands join the `policy` group, which policy_files registers."""
