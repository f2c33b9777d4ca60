"""`mcp-acl audit tail|verify|anchor|export`: read, check and anchor the hash-chained audit log."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from itertools import chain, islice
from pathlib import Path
from typing import Annotated, Optional

import typer

from mcp_acl.audit import GENESIS_HASH, AuditLog, canonical_json
from mcp_acl.cli._common import DatabaseOpt, JsonOpt, engine_for, fail, open_engine, print_json
from mcp_acl.config import data_home
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
    if (row.get("issuer") or "").startswith("token:"):
        who += f" with {row['issuer']}"  # a personal token, by name (auth/personal.py)
    if row["kind"] == "outcome":
        return f"#{row['id']} {at} outcome {row['outcome']} of #{row['ref_id']} ({who} {row['target']})"
    if row["kind"] == "authentication":
        return f"#{row['id']} {at} authentication refused ({who}): {row['reason']}"
    if row["kind"] == "revocation":
        return f"#{row['id']} {at} revocation by {who} of {row['target']}: {row['reason']}"
    if row["kind"] == "hold":
        return f"#{row['id']} {at} {row['action']} ({who} {row['target']}, held by #{row['ref_id']}): {row['reason']}"
    if row["kind"] == "approval":
        return f"#{row['id']} {at} approval by {who} of {row['target']} (rev {row['revision']}): {row['reason']}"
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
    # Closed when done: in-process (tests) a pool left to the collector leaves PostgreSQL connections open.
    with engine_for(database) as engine:
        log = AuditLog(engine)
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


KeyOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--key", envvar="MCP_ACL_AUDIT_ANCHOR_KEY", show_default=False,  # anchor.KEY_ENV
        help="The anchor signing key (an Ed25519 JWK file, kept away from the database); default: audit-anchor-key.jwk in $MCP_ACL_HOME.",
    ),
]


def _key_path(key: Path | None) -> Path:
    return key if key is not None else data_home() / "audit-anchor-key.jwk"


def _broken(result) -> str:
    where = f" at row {result.first_bad_id}" if result.first_bad_id is not None else ""
    return f"audit log broken{where} ({result.problem}): {result.detail}"


def _record(engine, result, by: str) -> None:
    """Keep the verdict as the last full verification (the console's overview checks on from it).

    The verdict is the command's answer either way: a database that takes
    no write only costs the overview that record, so say so and go on.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from mcp_acl.audit.checks import record_full

    try:
        record_full(engine, result, by, datetime.now(timezone.utc))
    except SQLAlchemyError as exc:
        typer.echo(f"note: this verification could not be recorded for the console ({exc.__class__.__name__})", err=True)


@audit_app.command("verify")
def verify(
    anchor_file: Annotated[Optional[Path], typer.Option("--anchor", help="Also check the chain still holds this anchor (from `audit anchor`).")] = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Check the hash chain and its head record (and an anchor): exit 0 when intact, 1 naming the first bad row.

    Example: mcp-acl audit verify || echo "the audit log was tampered with"

    Example: mcp-acl audit verify --anchor anchors/2026-12-06.jws
    """
    anchor = None
    if anchor_file is not None:
        # Imported here: only anchors need joserfc and cryptography.
        from mcp_acl.audit.anchor import AnchorError, load_key, read_anchor

        try:
            text = anchor_file.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read the anchor {anchor_file}: {exc.strerror}")
        try:
            verifying_key = load_key(_key_path(key))[0]
        except AnchorError as exc:
            fail(str(exc))
        try:
            anchor = read_anchor(text, verifying_key)
        except AnchorError as exc:  # an anchor the key does not vouch for: a failed check
            fail(f"{anchor_file}: {exc}", code=1)
    with engine_for(database) as engine:
        result = AuditLog(engine).verify(anchor)
        _record(engine, result, "mcp-acl audit verify" + (" --anchor" if anchor is not None else ""))
    if as_json:
        print_json(result.as_dict())
        raise typer.Exit(0 if result.ok else 1)
    if result.ok:
        head = f" (head {result.head_hash})" if result.head_hash else ""
        held = f"; it holds {anchor.describe()}" if anchor is not None else ""
        typer.echo(f"audit log intact: {result.count} rows{head}{held}")
        return
    fail(_broken(result), code=1)


@audit_app.command("anchor")
def anchor(
    file: Annotated[Optional[Path], typer.Argument(help="Where to write the anchor; standard output when left out.")] = None,
    key: KeyOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Verify the log, then sign a checkpoint of its newest row to keep outside the database.

    The key is made on first use. Keep anchors where whoever can write the
    database cannot (a ticket, a log shipper, another machine), then check
    one later with `audit verify --anchor FILE`.

    Example: mcp-acl audit anchor anchors/$(date +%F).jws
    """
    from mcp_acl.audit.anchor import AnchorError, anchor_verified, load_key

    key_path = _key_path(key)
    with engine_for(database) as engine:
        result = AuditLog(engine).verify()
        _record(engine, result, "mcp-acl audit anchor")
    if not result.ok:
        fail(f"not anchoring a broken log: {_broken(result)}", code=1)
    try:
        signing_key, made = load_key(key_path, create=True)
        token = anchor_verified(signing_key, result, datetime.now(timezone.utc))
    except AnchorError as exc:
        fail(str(exc))
    if made:
        typer.echo(f"made a new anchor key at {key_path}; keep it (and a copy) away from the database", err=True)
    if file is None:
        typer.echo(token)
        return
    try:
        file.write_text(token + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {file}: {exc.strerror}")
    typer.echo(f"anchored row {result.count} (head {result.head_hash or GENESIS_HASH}) in {file}", err=True)


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
