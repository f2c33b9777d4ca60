"""Admin commands: init, and the users, roles and clients that grants name."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy import select

from mcp_acl.cli._common import DatabaseOpt, JsonOpt, cells, engine_for, fail, out, policy_admin, print_json, table
from mcp_acl.oauth.passwords import PasswordError, check_strength, hash_password, set_password
from mcp_acl.store import tables as t
from mcp_acl.store import upgrade
from mcp_acl.store.admin import unknown_name
from mcp_acl.store.engine import redact

user_app = typer.Typer(help="Add, list and remove users.", no_args_is_help=True)
role_app = typer.Typer(help="Add, list and remove roles; assign them to users.", no_args_is_help=True)
client_app = typer.Typer(help="Register, list and remove OAuth clients (agents and apps).", no_args_is_help=True)


PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the sign-in password from standard input (one line).")
]


def _new_password(prompt: bool, from_stdin: bool) -> str | None:
    """The password the administrator typed (twice) or piped in; None when neither was asked for."""
    if prompt and from_stdin:
        fail("use --password or --password-stdin, not both")
    if from_stdin:
        text = sys.stdin.read()
        password = text.removesuffix("\n").removesuffix("\r")
    elif prompt:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        return None
    try:
        check_strength(password)
    except PasswordError as exc:
        fail(str(exc))
    return password


def _gone(what: str, grants: int) -> str:
    return f"removed {what}" + (f" and its {grants} grant{'s' if grants != 1 else ''}" if grants else "")


def init(database: DatabaseOpt = None) -> None:
    """Create the database, or upgrade it to the newest schema. Safe to run again.

    Example: mcp-acl init --database postgresql+psycopg://acl@db/acl
    """
    with engine_for(database, must_exist=False) as engine:
        upgrade(engine)
    out.print(f"database ready: {redact(engine.url.render_as_string(hide_password=False))}", highlight=False)


# users ------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user's subject, as its tokens will name it.")],
    role: Annotated[list[str] | None, typer.Option("--role", help="A role to give the user (repeatable).")] = None,
    password: Annotated[bool, typer.Option("--password", help="Prompt (twice) for a password to sign in with.")] = False,
    password_stdin: PasswordStdinOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Add a user, optionally with roles that already exist and a sign-in password.

    Example: mcp-acl user add alice --role analyst --role support --password
    """
    secret = _new_password(password, password_stdin)
    with policy_admin(database) as admin:
        admin.add_user(name, role or (), password_hash=hash_password(secret) if secret else None)
    out.print(f"added user {name}" + (f" with roles {', '.join(dict.fromkeys(role))}" if role else ""), highlight=False)


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str, typer.Argument(help="The user whose password to set.")],
    password_stdin: PasswordStdinOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Set or change a user's sign-in password (prompted twice, or read from standard input).

    Example: printf '%s' "$NEW_PASSWORD" | mcp-acl user passwd alice --password-stdin
    """
    with engine_for(database) as engine:
        with engine.connect() as conn:
            if conn.execute(select(t.users.c.name).where(t.users.c.name == name)).first() is None:
                fail(unknown_name("user", name))
        try:
            set_password(engine, name, _new_password(not password_stdin, password_stdin))
        except PasswordError as exc:
            fail(str(exc))
    out.print(f"password of user {name} set", highlight=False)


@user_app.command("list")
def user_list(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List users with their roles.

    Example: mcp-acl user list --json
    """
    with policy_admin(database) as admin:
        users = admin.list_users()
    if as_json:
        print_json([{"name": u.name, "roles": list(u.roles), "disabled": u.disabled} for u in users])
        return
    rows = [cells(u.name, ", ".join(u.roles), "yes" if u.disabled else "") for u in users]
    out.print(table("user", "roles", "disabled", rows=rows, wrap=("roles",)))


@user_app.command("remove")
def user_remove(name: Annotated[str, typer.Argument(help="The user to remove.")], database: DatabaseOpt = None) -> None:
    """Remove a user, its role memberships and the grants naming it; its live access tokens are revoked.

    Example: mcp-acl user remove alice
    """
    from mcp_acl.cli.tokens import admin_name

    with policy_admin(database) as admin:
        admin.actor = admin_name()  # named in the audit row if live tokens are revoked
        gone = admin.remove_user(name)
    out.print(_gone(f"user {name}", gone), highlight=False)


# roles ------------------------------------------------------------------------


@role_app.command("add")
def role_add(name: Annotated[str, typer.Argument(help="The role's name.")], database: DatabaseOpt = None) -> None:
    """Add a role; grants to role:NAME then apply to all its members.

    Example: mcp-acl role add analyst
    """
    with policy_admin(database) as admin:
        admin.add_role(name)
    out.print(f"added role {name}", highlight=False)


@role_app.command("list")
def role_list(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List roles with their number of members.

    Example: mcp-acl role list
    """
    with policy_admin(database) as admin:
        roles = admin.list_roles()
    if as_json:
        print_json([{"name": name, "members": count} for name, count in roles])
        return
    out.print(table("role", "members", rows=[cells(name, count) for name, count in roles]))


@role_app.command("remove")
def role_remove(name: Annotated[str, typer.Argument(help="The role to remove.")], database: DatabaseOpt = None) -> None:
    """Remove a role, its memberships and the grants naming it.

    Example: mcp-acl role remove analyst
    """
    with policy_admin(database) as admin:
        gone = admin.remove_role(name)
    out.print(_gone(f"role {name}", gone), highlight=False)


@role_app.command("assign")
def role_assign(
    user: Annotated[str, typer.Argument(help="An existing user.")],
    role: Annotated[str, typer.Argument(help="An existing role.")],
    database: DatabaseOpt = None,
) -> None:
    """Give a user a role.

    Example: mcp-acl role assign alice analyst
    """
    with policy_admin(database) as admin:
        admin.assign(user, role)
    out.print(f"user {user} now has role {role}", highlight=False)


@role_app.command("unassign")
def role_unassign(
    user: Annotated[str, typer.Argument(help="A user that has the role.")],
    role: Annotated[str, typer.Argument(help="The role to take away.")],
    database: DatabaseOpt = None,
) -> None:
    """Take a role away from a user.

    Example: mcp-acl role unassign alice analyst
    """
    with policy_admin(database) as admin:
        admin.unassign(user, role)
    out.print(f"user {user} no longer has role {role}", highlight=False)


# clients ----------------------------------------------------------------------


@client_app.command("add")
def client_add(
    client_id: Annotated[str, typer.Argument(help="The OAuth client_id (a token's client_id or azp).")],
    restricted: Annotated[
        bool, typer.Option("--restricted", help="Cap the client's users: a call must also be allowed by client:ID's own grants.")
    ] = False,
    redirect_uri: Annotated[
        list[str] | None, typer.Option("--redirect-uri", help="Where the sign-in returns (repeatable): lets it sign users in.")
    ] = None,
    confidential: Annotated[
        bool, typer.Option("--confidential", help="Give it a secret (printed once) for client credentials and the code flow.")
    ] = False,
    name: Annotated[str | None, typer.Option("--name", help="The name the consent page shows.")] = None,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Register a client; a restricted one can never do more than its own grants allow.

    With --redirect-uri it can sign users in (public, PKCE); with --confidential
    it gets a secret, printed once, for client credentials (acting with no user).

    Example: mcp-acl client add report-agent --restricted --confidential
    """
    from mcp_acl.oauth.clients import ClientError, ClientRegistry, Registration  # Authlib: slow to load

    try:
        registration = Registration.for_admin(redirect_uri or [], confidential)
    except ClientError as exc:
        fail(str(exc))
    with policy_admin(database) as admin, admin.change([("client", client_id)]) as conn:
        admin.add_client(client_id, restricted, name, conn=conn)
        secret = ClientRegistry(admin.engine).attach(conn, client_id, registration) if registration else None
    if as_json:
        print_json({"client_id": client_id, "restricted": restricted, "client_secret": secret})
        return
    out.print(f"added {'restricted ' if restricted else ''}client {client_id}", highlight=False)
    if secret:
        out.print(f"client secret (shown only now; keep it safe): {secret}", highlight=False, soft_wrap=True)


@client_app.command("secret")
def client_secret(
    client_id: Annotated[str, typer.Argument(help="A confidential client.")], database: DatabaseOpt = None
) -> None:
    """Replace a confidential client's secret; the new one is printed once and the old one stops working.

    Example: mcp-acl client secret report-agent
    """
    from mcp_acl.oauth.clients import ClientError, ClientRegistry  # Authlib: slow to load

    with engine_for(database) as engine:
        try:
            secret = ClientRegistry(engine).new_secret(client_id)
        except ClientError as exc:
            fail(str(exc))
    out.print(f"new client secret (shown only now): {secret}", highlight=False, soft_wrap=True)


@client_app.command("list")
def client_list(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List registered clients.

    Example: mcp-acl client list --json
    """
    with policy_admin(database) as admin:
        clients = admin.list_clients()
    if as_json:
        print_json([{"id": cid, "name": name, "restricted": restricted} for cid, name, restricted in clients])
        return
    rows = [cells(cid, name, "yes" if restricted else "") for cid, name, restricted in clients]
    out.print(table("client", "name", "restricted", rows=rows, wrap=("name",)))


@client_app.command("remove")
def client_remove(client_id: Annotated[str, typer.Argument(help="The client to remove.")], database: DatabaseOpt = None) -> None:
    """Remove a client and the grants naming it; its live access tokens are revoked.

    Example: mcp-acl client remove report-agent
    """
    from mcp_acl.cli.tokens import admin_name

    with policy_admin(database) as admin:
        admin.actor = admin_name()  # named in the audit row if live tokens are revoked
        gone = admin.remove_client(client_id)
    out.print(_gone(f"client {client_id}", gone), highlight=False)


def register(app: typer.Typer) -> None:
    """Add the admin commands to the CLI."""
    app.command()(init)
    app.add_typer(user_app, name="user")
    app.add_typer(role_app, name="role")
    app.add_typer(client_app, name="client")
