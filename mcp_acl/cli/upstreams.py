"""Upstream commands: add, list, show and remove the MCP servers whose tools mcp-acl governs."""

from __future__ import annotations

import getpass
import shlex
import sys
from typing import Annotated

import anyio
import typer

from mcp_acl.audit import AuditLog
from mcp_acl.audit.log import AuditError
from mcp_acl.cli._common import DatabaseOpt, JsonOpt, cells, engine_for, fail, out, policy_admin, print_json, table, user_errors
from mcp_acl.store import PolicyAdmin
from mcp_acl.store.pins import approve_definitions, pinned_definitions, request_reread
from mcp_acl.store.upstreams import DEFAULT_TIMEOUT_SECONDS, Upstream, add_upstream, get_upstream, list_upstreams, parse_pairs, remove_upstream

upstream_app = typer.Typer(help="Register, list, approve, refresh and remove upstream MCP servers whose tools mcp-acl governs.", no_args_is_help=True)


def _as_json(up: Upstream) -> dict:
    return {
        "name": up.name, "transport": up.transport, "url": up.url, "command": up.command, "args": list(up.args),
        "env": dict(up.env), "headers": dict(up.headers), "timeout": up.timeout_seconds,
        "created_by": up.created_by, "created_at": up.created_at.isoformat() if up.created_at else None,
    }


@upstream_app.command("add")
def upstream_add(
    name: Annotated[str, typer.Argument(help="The namespace its tools get: NAME.tool (grant them as tool:NAME.*).")],
    url: Annotated[str | None, typer.Option("--url", help="A Streamable HTTP MCP endpoint, e.g. https://host/mcp.")] = None,
    command: Annotated[
        str | None, typer.Option("--command", help="A stdio MCP server to start, as one quoted command line.")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="K=env:VAR or K=file:/path set for the command (repeatable).")
    ] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", help="K=env:VAR or K=file:/path sent to the URL (repeatable).")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds a call may take before it is given up.")] = DEFAULT_TIMEOUT_SECONDS,
    database: DatabaseOpt = None,
) -> None:
    """Register an upstream MCP server; its tools join the catalogue as NAME.tool when a gateway starts.

    Credentials are references, resolved by the gateway when it connects: `env:VAR` (an environment
    variable) or `file:/path` (a file's contents); values are never stored.

    Example: mcp-acl upstream add github --url https://example.com/mcp --header 'Authorization=env:GITHUB_TOKEN'
    """
    if (url is None) == (command is None):
        fail("give exactly one of --url URL or --command 'CMD ARGS…'")
    try:
        argv = shlex.split(command) if command is not None else []
    except ValueError as exc:
        fail(f"--command cannot be read as a command line: {exc}")
    if command is not None and not argv:
        fail("--command needs the program to run, e.g. --command 'python server.py'")
    with policy_admin(database) as admin:
        up = Upstream(
            name=name, transport="http" if url is not None else "stdio", url=url,
            command=argv[0] if argv else None, args=tuple(argv[1:]),
            env=parse_pairs(env or [], "--env"), headers=parse_pairs(header or [], "--header"), timeout_seconds=timeout,
        )
        add_upstream(admin, up)
    out.print(
        f"added upstream {name} ({up.where()}); once a gateway starts, its tools and prompts are {name}.*, "
        f"its resources upstream://{name}/*", highlight=False, soft_wrap=True,
    )


@upstream_app.command("list")
def upstream_list(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List the registered upstreams.

    Example: mcp-acl upstream list --json
    """
    with engine_for(database) as engine, user_errors(), engine.connect() as conn:
        found = list_upstreams(conn)
    if as_json:
        print_json([_as_json(up) for up in found])
        return
    rows = [cells(up.name, up.transport, up.where(), f"{up.timeout_seconds:g} s") for up in found]
    out.print(table("upstream", "transport", "where", "timeout", rows=rows, wrap=("where",)))


@upstream_app.command("show")
def upstream_show(name: Annotated[str, typer.Argument(help="The upstream to show.")], database: DatabaseOpt = None) -> None:
    """Show one upstream: where it is, its credential references and timeout.

    Example: mcp-acl upstream show github
    """
    with engine_for(database) as engine, user_errors(), engine.connect() as conn:
        up = get_upstream(conn, name)
    print_json(_as_json(up))


@upstream_app.command("remove")
def upstream_remove(name: Annotated[str, typer.Argument(help="The upstream to remove.")], database: DatabaseOpt = None) -> None:
    """Remove an upstream; its tools leave the catalogue when the gateway next starts.

    Example: mcp-acl upstream remove github
    """
    with policy_admin(database) as admin:
        remove_upstream(admin, name)
    out.print(f"removed upstream {name}", highlight=False)


@upstream_app.command("approve")
def upstream_approve(
    name: Annotated[str, typer.Argument(help="The upstream whose current tool and prompt definitions to trust.")],
    yes: Annotated[bool, typer.Option("--yes", help="Approve without asking (needed when there is no terminal).")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Show how an upstream's tools and prompts differ from what was pinned, then pin them as they are now.

    Changed and new tools and prompts of an upstream are withheld from every catalogue until approved. Approving
    bumps the policy revision (serving gateways show the tools at once) and writes an audit row.

    Example: mcp-acl upstream approve github --yes
    """
    # Connecting loads the MCP SDK: only this command needs it (see tests/cli/test_startup.py).
    from mcp_acl.upstream.review import difference, read_current, readable_diff

    with engine_for(database) as engine, user_errors():
        with engine.connect() as conn:
            up = get_upstream(conn, name)
            pinned = pinned_definitions(conn, name)
        current = anyio.run(read_current, up)
        diff = difference(pinned, current)
        if not diff:
            out.print(f"upstream {name}: its {len(current.tools)} tools and {len(current.prompts)} prompts are as pinned; nothing to approve", highlight=False)
            return
        for line in readable_diff(name, pinned, current):
            out.print(line, highlight=False, markup=False, soft_wrap=True)
        if not yes:
            if not sys.stdin.isatty():
                fail("no terminal to confirm on; run again with --yes to approve")
            if not typer.confirm(f"Approve these definitions of {name}?", default=False):
                fail("not approved; nothing changed", code=1)
        admin = PolicyAdmin(engine)
        approve_definitions(admin, name, current)
        try:
            AuditLog(engine).record_approval(
                target=f"upstream:{name}", reason=f"definitions approved: {diff.summary()}",
                subject=_os_user(), revision=admin.revision(),
            )
        except AuditError as exc:
            fail(f"approved, but the audit row could not be written: {exc}", code=1)
    out.print(f"approved upstream {name}: {diff.summary()}", highlight=False, soft_wrap=True)


@upstream_app.command("refresh")
def upstream_refresh(name: Annotated[str, typer.Argument(help="The upstream to re-read.")], database: DatabaseOpt = None) -> None:
    """Make serving gateways re-read an upstream's tools now; changed or new tools stay withheld until approved.

    Example: mcp-acl upstream refresh github
    """
    with policy_admin(database) as admin:
        request_reread(admin, name)
    out.print(f"asked serving gateways to re-read upstream {name}", highlight=False)


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def register(app: typer.Typer) -> None:
    """Add the upstream commands to the CLI."""
    app.add_typer(upstream_app, name="upstream")
