"""Upstream commands: add, list, show and remove the MCP servers whose tools mcp-acl governs."""

from __future__ import annotations

import getpass
import shlex
import sys
from functools import partial
from typing import Annotated

import anyio
import typer

from mcp_acl.audit import AuditLog
from mcp_acl.audit.log import AuditError
from mcp_acl.cli._common import DatabaseOpt, JsonOpt, cells, engine_for, fail, out, policy_admin, print_json, table, user_errors
from mcp_acl.store import PolicyAdmin
from mcp_acl.store.pins import add_pinned, approve_definitions, pinned_definitions, request_reread
from mcp_acl.store.upstream_status import UNREPORTED, UpstreamStatus, pinned_counts, read_statuses
from mcp_acl.store.upstreams import (
    DEFAULT_TIMEOUT_SECONDS, Upstream, add_upstream, check_new_upstream, get_upstream, list_upstreams, oauth_from_options, parse_pairs,
    remove_upstream,
)

upstream_app = typer.Typer(help="Register, list, approve, refresh and remove upstream MCP servers whose tools mcp-acl governs.", no_args_is_help=True)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _when(at) -> str | None:
    return at.isoformat() if at else None


def _as_json(up: Upstream, status: UpstreamStatus | None, pinned: int) -> dict:
    health = {
        "state": status.state if status else UNREPORTED,
        "tools_listed": status.tools_listed if status else None,
        "tools_withheld": status.tools_withheld if status else None,
        "last_error": status.last_error if status else None,
        "last_seen": _when(status.last_seen_at) if status else None,
        "reported_by": status.reported_by if status else None,
        "reported_at": _when(status.reported_at) if status else None,
    }
    return {
        "name": up.name, "transport": up.transport, "url": up.url, "command": up.command, "args": list(up.args),
        "env": dict(up.env), "headers": dict(up.headers), "oauth": up.oauth.portable() if up.oauth else None,
        "timeout": up.timeout_seconds,
        "created_by": up.created_by, "created_at": _when(up.created_at), "pinned_tools": pinned, **health,
    }


def _health_row(up: Upstream, status: UpstreamStatus | None, pinned: int) -> list:
    """upstream, where, state, tools (listed, withheld; or pinned, before any report), last seen, last error."""
    if status is None:
        return cells(up.name, up.where(), UNREPORTED, f"{pinned} pinned", "-", "-")
    tools = "-" if status.tools_listed is None else f"{status.tools_listed} listed, {status.tools_withheld} withheld"
    seen = status.last_seen_at.strftime("%Y-%m-%d %H:%M:%S") if status.last_seen_at else "-"
    return cells(up.name, up.where(), status.state, tools, seen, status.last_error or "-")


@upstream_app.command("add")
def upstream_add(
    name: Annotated[str, typer.Argument(help="The namespace its tools get: NAME.tool (grant them as tool:NAME.*).")],
    url: Annotated[str | None, typer.Option("--url", help="A Streamable HTTP MCP endpoint, e.g. https://host/mcp.")] = None,
    sse: Annotated[
        bool, typer.Option("--sse", help="The --url speaks the legacy HTTP+SSE transport (its SSE endpoint, e.g. https://host/sse).")
    ] = False,
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
    no_connect: Annotated[
        bool, typer.Option("--no-connect", help="Register without connecting (not reachable yet): its tools are pinned when a gateway first reads them.")
    ] = False,
    database: DatabaseOpt = None,
    oauth_client_id: Annotated[
        str | None, typer.Option("--oauth-client-id", help="Get bearer tokens from the upstream's authorization server as this client.")
    ] = None,
    oauth_client_secret: Annotated[
        str | None, typer.Option("--oauth-client-secret", help="The client's secret as env:VAR or file:/path (never a value).")
    ] = None,
    oauth_token_url: Annotated[
        str | None, typer.Option("--oauth-token-url", help="The token endpoint; without it, discovered from the upstream (RFC 9728, RFC 8414).")
    ] = None,
    oauth_scope: Annotated[str | None, typer.Option("--oauth-scope", help="The scope to ask for (space-separated).")] = None,
    oauth_resource: Annotated[
        str | None, typer.Option("--oauth-resource", help="The RFC 8707 resource to ask a token for (default: the --url).")
    ] = None,
    oauth_audience: Annotated[str | None, typer.Option("--oauth-audience", help="The audience to ask a token for.")] = None,
    oauth_token_exchange: Annotated[
        bool, typer.Option("--oauth-token-exchange", help="Exchange each caller's token (RFC 8693) for one towards the upstream.")
    ] = False,
) -> None:
    """Register an upstream MCP server: connect to it once, pin its tools' definitions, and store it.

    Its tools join the catalogue as NAME.tool, in serving gateways too, without a restart. The connection
    is bounded by --timeout; an upstream that cannot be read as an MCP server is refused and nothing is
    written, unless --no-connect registers it as it is.

    Credentials are references, resolved when connecting: `env:VAR` (an environment variable) or
    `file:/path` (a file's contents); values are never stored.

    With --oauth-client-id and --oauth-client-secret the gateway gets its bearer tokens from the
    upstream's authorization server (client credentials), or with --oauth-token-exchange exchanges
    each caller's token for one towards the upstream; see docs/upstreams.md.

    Example: mcp-acl upstream add github --url https://example.com/mcp --header 'Authorization=env:GITHUB_TOKEN'
    """
    if (url is None) == (command is None):
        fail("give exactly one of --url URL or --command 'CMD ARGS…'")
    if sse and url is None:
        fail("--sse goes with --url (the upstream's SSE endpoint)")
    try:
        argv = shlex.split(command) if command is not None else []
    except ValueError as exc:
        fail(f"--command cannot be read as a command line: {exc}")
    if command is not None and not argv:
        fail("--command needs the program to run, e.g. --command 'python server.py'")
    with policy_admin(database) as admin:
        up = Upstream(
            name=name, transport=("sse" if sse else "http") if url is not None else "stdio", url=url,
            command=argv[0] if argv else None, args=tuple(argv[1:]),
            env=parse_pairs(env or [], "--env"), headers=parse_pairs(header or [], "--header"), timeout_seconds=timeout,
            oauth=oauth_from_options(
                client_id=oauth_client_id, client_secret=oauth_client_secret, token_url=oauth_token_url, scope=oauth_scope,
                resource=oauth_resource, audience=oauth_audience, token_exchange=oauth_token_exchange,
            ),
        )
        if no_connect:
            add_upstream(admin, up)
            out.print(
                f"added upstream {name} ({up.where()}) without connecting: its tools and prompts ({name}.*) are pinned when a gateway "
                f"first reads them; run `mcp-acl upstream approve {name}` once it is reachable to review them first",
                highlight=False, soft_wrap=True,
            )
            return
        with admin.engine.connect() as conn:
            check_new_upstream(conn, up)  # before connecting: a bad name costs no connection
        # Connecting loads the MCP SDK: only when it is needed (see tests/cli/test_startup.py).
        from mcp_acl.upstream.review import read_current

        current = anyio.run(partial(read_current, up, nothing="nothing was written (--no-connect registers it as it is)"))
        add_pinned(admin, up, current)
    out.print(
        f"added upstream {name} ({up.where()}): found {_count(len(current.tools), 'tool')} and {_count(len(current.prompts), 'prompt')} "
        f"and pinned their definitions; they are {name}.* in the catalogue (grant them as tool:{name}.*, prompt:{name}.*), "
        f"its resources upstream://{name}/*",
        highlight=False, soft_wrap=True,
    )


@upstream_app.command("list")
def upstream_list(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List the registered upstreams.

    Example: mcp-acl upstream list --json
    """
    with engine_for(database) as engine, user_errors(), engine.connect() as conn:
        found = list_upstreams(conn)
        statuses, pinned = read_statuses(conn), pinned_counts(conn)
    if as_json:
        print_json([_as_json(up, statuses.get(up.name), pinned.get(up.name, 0)) for up in found])
        return
    rows = [_health_row(up, statuses.get(up.name), pinned.get(up.name, 0)) for up in found]
    out.print(table("upstream", "where", "state", "tools", "last seen", "last error", rows=rows, wrap=("where", "last error")))


@upstream_app.command("show")
def upstream_show(name: Annotated[str, typer.Argument(help="The upstream to show.")], database: DatabaseOpt = None) -> None:
    """Show one upstream: where it is, its credential references, timeout, and its health as a serving gateway last reported it.

    Example: mcp-acl upstream show github
    """
    with engine_for(database) as engine, user_errors(), engine.connect() as conn:
        up = get_upstream(conn, name)
        status = read_statuses(conn, [name]).get(name)
        pinned = pinned_counts(conn).get(name, 0)
    print_json(_as_json(up, status, pinned))


@upstream_app.command("remove")
def upstream_remove(name: Annotated[str, typer.Argument(help="The upstream to remove.")], database: DatabaseOpt = None) -> None:
    """Remove an upstream; its tools leave serving gateways' catalogues and their connections close.

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
