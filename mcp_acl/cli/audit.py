"""`mcp-acl audit tail|verify|export`: read and check the hash-chained audit log."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Annotated, Optional

import typer

from mcp_acl.audit import AuditLog, canonical_json
from mcp_acl.cli._common import DatabaseOpt, JsonOpt, fail, open_engine, print_json
from mcp_acl.printable import printable

audit_app = typer.Typer(name="audit", help="Read and check the audit log.", no_args_is_help=True)


def describe_row(row: dict) -> str:
    """One line for a person, e.g. `#3 2026-… decision deny alice via cli call tool:x (rev 7, 0.2 ms): why`.

    Every stored text is passed through `printable`: a refused token's
    unverified `sub` may hold a newline and a whole forged row after it.
    """
    row = {key: printable(value) if isinstance(value, str) else value for key, value in row.items()}
    at = row["at"][:19].replace("T", " ") + "Z"
    who = row["subject"] or "(no user)"
    if row["client_id"]:
        who += f" via {row['client_id']}"
    if row["kind"] == "outcome":
        return f"#{row['id']} {at} outcome {row['outcome']} of #{row['ref_id']} ({who} {row['target']})"
    if row["kind"] == "authentication":
        return f"#{row['id']} {at} authentication refused ({who}): {row['reason']}"
    grant = f"grant #{row['grant_id']}, " if row["grant_id"] is not None else ""
    return (
        f"#{row['id']} {at} decision {row['decision']} {who} {row['action']} {row['target']} "
        f"({grant}rev {row['revision']}, {row['latency_ms']} ms): {row['reason']}"
    )


@audit_app.command("tail")
def tail(
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many of the newest rows to show.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep showing new rows as they come (Ctrl-C stops).")] = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
    poll: Annotated[float, typer.Option("--poll", hidden=True, min=0.0, help="SECONDS between looks for new rows.")] = 1.0,
    max_rows: Annotated[Optional[int], typer.Option("--max-rows", hidden=True, help="Stop after this many rows (for tests).")] = None,
) -> None:
    """Show the newest audit rows, oldest first; with --json one JSON object per line.

    Example: mcp-acl audit tail -n 50 --follow
    """
    log = AuditLog(open_engine(database))
    recent = log.tail(lines)
    rows: Iterator[dict] = iter(recent)
    if follow:
        after = recent[-1]["id"] if recent else (log.last_id() if lines == 0 else 0)
        rows = chain(rows, log.follow(after_id=after, poll_seconds=poll))
    try:
        for row in islice(rows, max_rows):
            typer.echo(canonical_json(row) if as_json else describe_row(row))
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


@audit_app.command("verify")
def verify(as_json: JsonOpt = False, database: DatabaseOpt = None) -> None:
    """Check the hash chain: exit 0 when intact, 1 naming the first bad row otherwise.

    Example: mcp-acl audit verify || echo "the audit log was tampered with"
    """
    result = AuditLog(open_engine(database)).verify()
    if as_json:
        print_json(result.as_dict())
        raise typer.Exit(0 if result.ok else 1)
    if result.ok:
        head = f" (head {result.head_hash})" if result.head_hash else ""
        typer.echo(f"audit log intact: {result.count} rows{head}")
        return
    fail(f"audit log broken at row {result.first_bad_id} ({result.problem}): {result.detail}", code=1)


@audit_app.command("export")
def export(
    file: Annotated[Optional[Path], typer.Argument(help="Where to write; standard output when left out.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Only jsonl: one JSON object per row.")] = "jsonl",
    database: DatabaseOpt = None,
) -> None:
    """Write every audit row as JSON lines, oldest first.

    Example: mcp-acl audit export --format jsonl audit-2026-11.jsonl
    """
    if fmt != "jsonl":
        fail(f"unknown format {fmt!r}: only jsonl is supported")
    log = AuditLog(open_engine(database))
    if file is None:
        log.export_jsonl(sys.stdout)
        return
    try:
        with file.open("w", encoding="utf-8") as fp:
            count = log.export_jsonl(fp)
    except OSError as exc:
        fail(f"cannot write {file}: {exc.strerror}")
    typer.echo(f"exported {count} rows to {file}", err=True)


def register(app: typer.Typer) -> None:
    """Add the `audit` command group to the CLI."""
    app.add_typer(audit_app)
