"""`mcp-acl policy export|import|test`: the policy as a YAML file."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from mcp_acl.cli._common import DatabaseOpt, JsonOpt, fail, out, policy_admin, print_json
from mcp_acl.printable import printable
from mcp_acl.store import PolicyLoader
from mcp_acl.store.cases import parse_cases, run_cases
from mcp_acl.store.portable import dump_document, import_document, parse_document, read_document

EXIT_FAILED = 1

policy_app = typer.Typer(help="Export, import and test the whole policy as a YAML file.", no_args_is_help=True)


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc.strerror if isinstance(exc, OSError) else exc}")


@policy_app.command("export")
def export(
    file: Annotated[Path | None, typer.Argument(help="Where to write the YAML; standard output when left out.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Write users, roles, clients and grants as YAML (without grant ids or passwords).

    Example: mcp-acl policy export policy.yaml
    """
    with policy_admin(database) as admin:
        doc, revision = read_document(admin.engine)
    text = dump_document(doc, revision)
    if file is None:
        sys.stdout.write(text)
        return
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {file}: {exc.strerror}")
    out.print(f"exported {doc.summary()} at revision {revision} to {file}", highlight=False, markup=False)


@policy_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A YAML file in the format `policy export` writes.")],
    database: DatabaseOpt = None,
) -> None:
    """Add everything in a policy file, all or nothing: one bad entry and nothing is written.

    Example: mcp-acl policy import policy.yaml --database sqlite:///fresh.db
    """
    text = _read(file)
    with policy_admin(database) as admin:
        doc = parse_document(text, str(file))
        revision = import_document(admin, doc)
    out.print(f"imported {doc.summary()}; the policy is now at revision {revision}", highlight=False, markup=False)


@policy_app.command("test")
def test(
    file: Annotated[Path, typer.Argument(help="A YAML list of cases: principal, target, args, client, expect.")],
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run policy test cases against the current policy; exit 1 if any case fails.

    Example: mcp-acl policy test cases.yaml
    """
    text = _read(file)
    with policy_admin(database) as admin:
        cases = parse_cases(text, str(file))
        outcomes = run_cases(admin, PolicyLoader(admin.engine), cases, datetime.now(timezone.utc))
    failed = [o for o in outcomes if not o.passed]
    if as_json:
        print_json([o.as_dict() for o in outcomes])
    else:
        for o in outcomes:
            expected = "allow" if o.case.expect_allow else "deny"
            mark = "pass" if o.passed else "FAIL"
            line = f"{mark}  {o.case.title()}: expected {expected}"
            if not o.passed:
                line += f", got {'allow' if o.decision.allowed else 'deny'}"
            out.print(printable(f"{line} ({o.decision.reason})"), highlight=False, markup=False, soft_wrap=True)
        out.print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed", highlight=False)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add the `policy` command group to the CLI."""
    app.add_typer(policy_app, name="policy")
