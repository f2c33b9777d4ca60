"""`mcp-acl run-demo`: what `make run` does: init, seed the demo once, print tokens and commands, serve."""

from __future__ import annotations

import os
import shlex
import sys
from datetime import timedelta
from pathlib import Path

import typer

from mcp_acl.cli._common import DatabaseOpt, err, fail, open_engine, settings_from_env
from mcp_acl.cli.serve import HostOpt, PortOpt, bind, build_app, listen_url, port_note, run_app
from mcp_acl.config import data_home, database_url
from mcp_acl.store.engine import parse_url, sqlite_file

TOKEN_TTL = timedelta(hours=8)
INSPECTOR = "npx -y @modelcontextprotocol/inspector@2.12.0 --cli {url} --transport http"
USERS = (("alice", "ALICE", "role analyst: reads reports/, selects from orders"), ("bob", "BOB", "role intern: only lists files"))
# Sign-in passwords for the browser (OAuth) flow, set only on demo users that have none.
DEMO_PASSWORDS = {"alice": "alice-demo-password", "bob": "bob-demo-password", "admin": "admin-demo-password"}
# The demo's administrator: role admin holds admin:console, the web console's target.
CONSOLE_ADMIN = "admin"


def set_demo_passwords(engine) -> None:
    """Give the demo users their demo passwords, unless a password was set already."""
    from sqlalchemy import select

    from mcp_acl.oauth.passwords import set_password
    from mcp_acl.store import tables as t

    with engine.connect() as conn:
        without = set(conn.execute(select(t.users.c.name).where(t.users.c.password_hash.is_(None))).scalars())
    for user, password in DEMO_PASSWORDS.items():
        if user in without:
            set_password(engine, user, password)


def shell_setup(database: str | None) -> list[str]:
    """The lines a second terminal needs for `mcp-acl` to run, and to act on the database being served.

    A new terminal has neither the virtual environment on its PATH nor the
    MCP_ACL_HOME that `make run` exports; without them the CLI is not found,
    or opens the default database (~/.local/share/mcp-acl) instead of this one.
    """
    lines = []
    scripts = Path(sys.executable).parent
    if (scripts / "mcp-acl").is_file():
        lines.append(f'export PATH={shlex.quote(str(scripts.absolute()))}:"$PATH"   # the mcp-acl command')
    else:  # run from a source tree without the console script: the module does the same
        lines.append(f"alias mcp-acl={shlex.quote(shlex.quote(sys.executable) + ' -m mcp_acl')}   # the mcp-acl command")
    lines.append(f"export MCP_ACL_HOME={shlex.quote(str(data_home().absolute()))}   # the demo's files and database")
    url = database_url(database)
    if database or os.environ.get("MCP_ACL_DATABASE_URL"):
        parsed = parse_url(url)
        path = sqlite_file(url)
        if path is not None:
            # The other terminal may be in another folder: a relative file would be another database.
            parsed = parsed.set(database=str(path.absolute()))
        shown = parsed.render_as_string(hide_password=True)
        note = "  (password hidden: put it back)" if parsed.password else ""
        lines.append(f"export MCP_ACL_DATABASE_URL={shlex.quote(shown)}   # the database being served{note}")
    for name in ("MCP_ACL_RESOURCE_URL", "MCP_ACL_ISSUER_URL", "MCP_ACL_TOOLS_PATH"):
        if os.environ.get(name):
            lines.append(f"export {name}={shlex.quote(os.environ[name])}")
    return lines


def instructions(url: str, tokens: dict[str, str], setup: list[str] = ()) -> str:
    """The text `run-demo` prints: what to paste into another terminal, and the commands to connect."""
    inspector = INSPECTOR.format(url=url)
    base = url.removesuffix("/mcp")
    lines = [
        f"mcp-acl serves the demo at {url}  (health: {base}/healthz)",
        f"The admin console: {base}/admin  (sign in as {CONSOLE_ADMIN} / {DEMO_PASSWORDS[CONSOLE_ADMIN]})",
        "",
    ]
    hours = int(TOKEN_TTL.total_seconds() // 3600)
    lines.append(
        f"Paste these lines into another terminal: the mcp-acl command on this database, and access tokens valid {hours} hours:"
    )
    lines += [f"  {line}" for line in setup]
    for user, var, what in USERS:
        lines.append(f"  export {var}='{tokens[user]}'   # {user}, {what}")
    lines += [
        "",
        "Each user's catalogue and a refusal, with the MCP Inspector CLI (needs Node 22):",
        f'  {inspector} --method tools/list --header "Authorization: Bearer $ALICE"',
        f'  {inspector} --method tools/list --header "Authorization: Bearer $BOB"',
        f'  {inspector} --method tools/call --tool-name files.read --tool-arg path=hr/salaries.csv --header "Authorization: Bearer $ALICE"',
        "",
        "The same with the Python SDK client:",
        f'  mcp-acl connect --url {url} --token "$ALICE"',
        f'  mcp-acl connect --url {url} --token "$BOB"',
        f"  mcp-acl connect --url {url} --token \"$ALICE\" --call files.read --args '{{\"path\": \"hr/salaries.csv\"}}'",
        "",
        "Change the policy while it serves; the very next call sees the change:",
        "  mcp-acl grants",
        "  mcp-acl revoke ID   # ID from the list; `mcp-acl grant --help` adds one",
        "",
        "Or sign in through the browser (OAuth) as alice or bob, with the demo passwords (unless changed since)",
        f"({', '.join(f'{u} / {p}' for u, p in DEMO_PASSWORDS.items() if u != CONSOLE_ADMIN)}; change them with `mcp-acl user passwd`):",
        f"  the Inspector web UI: npx -y @modelcontextprotocol/inspector@2.12.0, then connect to {url}",
        "  an agent client: mcp-acl register vscode|cursor|claude-desktop|inspector --write",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def run_demo(database: DatabaseOpt = None, host: HostOpt = "127.0.0.1", port: PortOpt = 8000) -> None:
    """Initialise the database, seed the demo if the policy is empty, print tokens and commands, then serve.

    Example: mcp-acl run-demo --port 8000
    """
    from mcp_acl.auth.keys import SigningKeys
    from mcp_acl.auth.tokens import issued_token, mint_access_token
    from mcp_acl.cli.tokens import DEFAULT_CLI_CLIENT
    from mcp_acl.store.token_ledger import insert_issued
    from mcp_acl.demo import DemoError, seed_demo
    from mcp_acl.store import StoreError, upgrade

    settings = settings_from_env(database)
    if not settings.embedded_issuer:
        fail("run-demo mints its own tokens from the embedded issuer: unset MCP_ACL_ISSUER, or use `mcp-acl serve`")
    engine = open_engine(database, must_exist=False)
    try:
        upgrade(engine)
        seed_demo(engine, data_home())
        set_demo_passwords(engine)
        err.print(f"seeded the demo under {data_home()}", highlight=False)
    except DemoError:
        err.print("the policy is not empty: serving it as it is (the demo was seeded before)", highlight=False)
    except (StoreError, OSError) as exc:
        fail(f"cannot prepare the demo: {exc}")
    keys = SigningKeys(engine)
    keys.ensure_active()
    tokens = {
        user: mint_access_token(
            keys, issuer=settings.embedded_issuer_url, audience=settings.resource_url,
            subject=user, client_id=DEFAULT_CLI_CLIENT, scopes=[settings.required_scope], ttl=TOKEN_TTL,
        )
        for user, _, _ in USERS
    }
    with engine.begin() as conn:
        # In the ledger, so `mcp-acl token revoke --user alice` finds them.
        for token in tokens.values():
            insert_issued(conn, issued_token(token))
    app = build_app(settings, engine)
    sock = bind(host, port)
    url = listen_url(sock)
    typer.echo(instructions(url, tokens, shell_setup(database)))
    if note := port_note(settings, url):
        err.print(note, highlight=False)
    run_app(app, sock)


def register(app: typer.Typer) -> None:
    """Add `run-demo` to the CLI."""
    app.command("run-demo")(run_demo)
