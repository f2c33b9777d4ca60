"""`mcp-acl token` and `mcp-acl keys list|rotate`: the embedded issuer from the command line."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated

import typer
from sqlalchemy import Engine, select

from mcp_acl.auth.errors import SigningError
from mcp_acl import expiry
from mcp_acl.cli._common import DatabaseOpt, JsonOpt, cells, engine_for, fail, out, print_json, table
from mcp_acl.config import Settings
from mcp_acl.store import tables as t
from mcp_acl.store.admin import unknown_name

# The client a user token names when --client is not given. It need not be
# registered: an unregistered client is unrestricted, so the token carries
# exactly the user's own grants.
DEFAULT_CLI_CLIENT = "mcp-acl-cli"

# The signing keys load joserfc and cryptography: imported by the commands that
# sign, so that every other command starts without them.


def parse_duration(text: str) -> timedelta:
    """A duration such as 90s, 30m, 1h or 1d (expiry.parse_duration), never zero; ValueError otherwise.

    Example: "30m" -> timedelta(minutes=30)
    """
    found = expiry.parse_duration(text)
    if not found:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 1h, 1d)")
    return found


def _embedded_settings(database: str | None) -> Settings:
    settings = Settings.from_env(database)
    if not settings.embedded_issuer:
        fail(f"an external issuer is configured (MCP_ACL_ISSUER={settings.issuer}): get tokens from it, not from mcp-acl")
    return settings


def _check_user(engine: Engine, name: str) -> None:
    with engine.connect() as conn:
        row = conn.execute(select(t.users.c.disabled).where(t.users.c.name == name)).first()
    if row is None:
        fail(unknown_name("user", name))
    if row.disabled:
        fail(f"user {name!r} is disabled")


def _check_client(engine: Engine, client_id: str) -> None:
    with engine.connect() as conn:
        found = conn.execute(select(t.clients.c.client_id).where(t.clients.c.client_id == client_id)).first()
    if found is None:
        fail(unknown_name("client", client_id))


def token(
    user: Annotated[str | None, typer.Option("--user", help="The user the token speaks for (must exist and be enabled).")] = None,
    client: Annotated[
        str | None,
        typer.Option("--client", help=f"The client (must be registered); default for a user token: {DEFAULT_CLI_CLIENT}."),
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A scope to grant; repeat for more. Default: the required scope (mcp).")
    ] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime with a unit: 90s, 30m, 1h, 1d (at most 1d).")] = "1h",
    database: DatabaseOpt = None,
) -> None:
    """Mint an access token from the embedded issuer; prints only the token.

    A user token (alice through the default client mcp-acl-cli, or a registered one):

      export TOKEN=$(mcp-acl token --user alice)
      mcp-acl token --user bob --client ollama-agent --ttl 30m

    A service token (the client on its own, no user):

      mcp-acl token --client ollama-agent
    """
    from mcp_acl.auth.keys import DEFAULT_MAX_TOKEN_TTL, describe_duration

    if user is None and client is None:
        fail("say who the token is for: --user NAME and/or --client ID")
    try:
        lifetime = parse_duration(ttl)
    except ValueError as exc:
        fail(str(exc))
    if lifetime > DEFAULT_MAX_TOKEN_TTL:
        fail(f"--ttl {ttl} is longer than the longest token lifetime ({describe_duration(DEFAULT_MAX_TOKEN_TTL)})")
    sys.stdout.write(mint_checked(database, user=user, client=client, scopes=scope, ttl=lifetime) + "\n")


def mint_checked(
    database: str | None, *, user: str | None, client: str | None, ttl: timedelta, scopes: list[str] | None = None,
) -> str:
    """A token from the embedded issuer after the checks `mcp-acl token` makes; exits 2 when one fails.

    The user must exist and be enabled; a client named explicitly must be
    registered (left out, the token names DEFAULT_CLI_CLIENT).
    """
    from mcp_acl.auth.keys import SigningKeys
    from mcp_acl.auth.tokens import mint_access_token

    settings = _embedded_settings(database)
    with engine_for(database) as engine:
        if user is not None:
            _check_user(engine, user)
        if client is not None:
            _check_client(engine, client)
        try:
            return mint_access_token(
                SigningKeys(engine),
                issuer=settings.embedded_issuer_url,
                audience=settings.resource_url,
                subject=user,
                client_id=client or DEFAULT_CLI_CLIENT,
                scopes=scopes or [settings.required_scope],
                ttl=ttl,
            )
        except SigningError as exc:
            fail(str(exc))


keys_app = typer.Typer(help="The embedded issuer's signing keys.", no_args_is_help=True)


@keys_app.command("list")
def keys_list(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List the signing keys: the active one, retired ones still published, expired ones.

    Example: mcp-acl keys list --json
    """
    from mcp_acl.auth.keys import SigningKeys

    _embedded_settings(database)
    with engine_for(database) as engine:
        keys = SigningKeys(engine).inventory()
    if as_json:
        print_json([k.as_dict() for k in keys])
        return
    if not keys:
        out.print("no signing keys yet: one is made when the first token is minted or the server starts")
        return
    # The kid stays whole: it is what scripts and logs match on.
    rows = [
        cells(k.kid, k.alg, k.state, k.created_at.isoformat(timespec="seconds"),
              k.publish_until.isoformat(timespec="seconds") if k.publish_until else "-")
        for k in keys
    ]
    out.print(table("kid", "alg", "state", "created", "published until", rows=rows))


@keys_app.command("rotate")
def keys_rotate(
    keep_old_for: Annotated[
        str, typer.Option("--keep-old-for", help="How long the old key stays in the JWKS, e.g. 1d (at least 1d).")
    ] = "1d",
    database: DatabaseOpt = None,
) -> None:
    """Make a new signing key; the old one keeps verifying its tokens for --keep-old-for.

    Example: mcp-acl keys rotate --keep-old-for 2d
    """
    from mcp_acl.auth.keys import SigningKeys, describe_duration

    _embedded_settings(database)
    try:
        keep = parse_duration(keep_old_for)
    except ValueError as exc:
        fail(str(exc))
    with engine_for(database) as engine:
        try:
            kid = SigningKeys(engine).rotate(keep)
        except SigningError as exc:
            fail(str(exc))
    out.print(f"new signing key {kid}; the old one stays published for {describe_duration(keep)}")


def register(app: typer.Typer) -> None:
    """Add `token` and the `keys` group to the CLI."""
    app.command()(token)
    app.add_typer(keys_app, name="keys")
