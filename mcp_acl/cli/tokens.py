"""`mcp-acl token` (mint), `mcp-acl token revoke` and `mcp-acl keys list|rotate`: the embedded issuer from the command line."""

from __future__ import annotations

import getpass
import sys
from datetime import timedelta
from typing import Annotated

import typer
from sqlalchemy import Engine, select

from mcp_acl.auth.errors import SigningError
from mcp_acl import expiry
from mcp_acl.cli._common import DatabaseOpt, JsonOpt, cells, engine_for, fail, out, print_json, settings_from_env, table
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
    settings = settings_from_env(database)
    if not settings.embedded_issuer:
        fail(f"an external issuer is configured (MCP_ACL_ISSUER={settings.issuer}): get tokens from it, not from mcp-acl")
    return settings


def _check_user(engine: Engine, name: str, allow_disabled: bool = False) -> None:
    with engine.connect() as conn:
        row = conn.execute(select(t.users.c.disabled).where(t.users.c.name == name)).first()
    if row is None:
        fail(unknown_name("user", name))
    if row.disabled and not allow_disabled:
        fail(f"user {name!r} is disabled")


def _check_client(engine: Engine, client_id: str) -> None:
    with engine.connect() as conn:
        found = conn.execute(select(t.clients.c.client_id).where(t.clients.c.client_id == client_id)).first()
    if found is None:
        fail(unknown_name("client", client_id))


# A group whose own options mint, so `mcp-acl token --user alice` stays what
# it always was beside `mcp-acl token revoke`; its help is the callback's.
token_app = typer.Typer(invoke_without_command=True)


@token_app.callback()
def token(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="The user the token speaks for (must exist and be enabled).")] = None,
    client: Annotated[
        str | None,
        typer.Option("--client", help=f"The client (must be registered); default for a user token: {DEFAULT_CLI_CLIENT}."),
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A scope to grant; repeat for more. Default: the required scope (mcp).")
    ] = None,
    ttl: Annotated[str | None, typer.Option("--ttl", help="Lifetime with a unit: 90s, 30m, 1h, 1d (at most 1d). Default: 1h.")] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", metavar="TARGET", help="Narrow the token to this target glob (repeat for more): it may use only these, within its user's access."),
    ] = None,
    when: Annotated[
        str | None, typer.Option("--when", metavar="CEL", help="With --only: a CEL condition every narrowed call must also meet.")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Mint an access token from the embedded issuer; prints only the token. `revoke` takes tokens back.

    A user token (alice through the default client mcp-acl-cli, or a registered one):

      export TOKEN=$(mcp-acl token --user alice)
      mcp-acl token --user bob --client ollama-agent --ttl 30m

    A service token (the client on its own, no user):

      mcp-acl token --client ollama-agent

    A narrowed token (never more than the user may; see docs/policy.md):

      mcp-acl token --user alice --only 'tool:files.read' --when 'args.path.startsWith("reports/q3")'

    Revoking: mcp-acl token revoke JTI, or every live token of a user or client (see `mcp-acl token revoke --help`).

    A long-lived personal token for a client that sends a fixed header: `mcp-acl token create --user alice --name bridge`.
    """
    from mcp_acl.auth.keys import DEFAULT_MAX_TOKEN_TTL, describe_duration

    if ctx.invoked_subcommand is not None:
        # `mcp-acl token --user alice revoke X` would read as minting and revoking at once.
        given = ("user", "client", "scope", "ttl", "only", "when", "database")
        # By name: Typer carries its own copy of Click and its ParameterSource.
        if any(getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE" for name in given):
            fail(f"put options after `{ctx.invoked_subcommand}`: `mcp-acl token {ctx.invoked_subcommand} --help` lists them")
        return
    if user is None and client is None:
        fail("say who the token is for: --user NAME and/or --client ID (or revoke one: mcp-acl token revoke JTI)")
    try:
        lifetime = parse_duration(ttl or "1h")
    except ValueError as exc:
        fail(str(exc))
    if lifetime > DEFAULT_MAX_TOKEN_TTL:
        fail(f"--ttl {ttl} is longer than the longest token lifetime ({describe_duration(DEFAULT_MAX_TOKEN_TTL)})")
    details = narrowing_details(only, when)
    sys.stdout.write(mint_checked(database, user=user, client=client, scopes=scope, ttl=lifetime, narrowing=details) + "\n")


def narrowing_details(only: list[str] | None, when: str | None) -> list[dict] | None:
    """The `authorization_details` claim for --only/--when (None: not narrowed); exits 2 when they are not valid."""
    from mcp_acl.policy import PolicyError, check_condition
    from mcp_acl.policy.narrowing import Narrowing, narrowing_entry

    if not only:
        if when is not None:
            fail("--when narrows a token: give the targets it applies to with --only")
        return None
    if when is not None and not when.strip():
        fail("--when is empty: leave it out for a narrowing without a condition")
    try:
        # Checked as a grant's condition is, so a typo fails here, not on every call.
        return Narrowing((narrowing_entry(only, when, check=check_condition),)).as_details()
    except PolicyError as exc:
        fail(f"--only/--when: {exc}")


@token_app.command("revoke")
def token_revoke(
    jti: Annotated[str | None, typer.Argument(metavar="[NAME|JTI]", help="A personal token's name (or the token itself), else a token's jti claim (e.g. from `mcp-acl audit` or the token itself); one that starts with - goes after --: `token revoke -- -abc`.")] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Instead: every live token and sign-in (refresh tokens) of this user.")
    ] = None,
    client: Annotated[
        str | None, typer.Option("--client", help="Instead: every live token and sign-in (refresh tokens) of this client.")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Revoke access tokens now: the next request with one is refused (401) on every gateway on this database.

    One token by its jti (an external issuer's too, if its tokens carry one),
    with every narrowed token exchanged from it:

      mcp-acl token revoke 3q2-7Xk1y0Vd9sQm8pLr2w

    A personal token by its name (a name is tried before a jti; `token list`
    shows them), or by the token itself (mcpacl_pat_…):

      mcp-acl token revoke bridge

    Every live token of a user or a client, personal tokens included, with
    its sign-ins (refresh tokens): the user must sign in again.

      mcp-acl token revoke --user alice
      mcp-acl token revoke --client ollama-agent
    """
    if [jti, user, client].count(None) != 2:
        fail("name one of: a JTI, --user NAME or --client ID")
    if jti is not None and (not jti.strip() or len(jti) > 255 or not jti.isprintable()):
        fail("not a jti: it is a short printable string (the token's jti claim)")
    from mcp_acl.audit import AuditError, AuditLog
    from mcp_acl.cli.personal_tokens import revoke_personal
    from mcp_acl.store.token_ledger import revoke_jti, revoke_party

    actor = admin_name()
    with engine_for(database) as engine:
        personal = revoke_personal(engine, jti, actor) if jti is not None else None
        if personal is not None:
            target, said = personal
        elif jti is not None:
            done = revoke_jti(engine, jti, actor)
            target = f"token:{jti}"
            if done.already:
                said = f"token {jti} was already revoked"
            elif done.known:
                whose = done.subject or f"service {done.client_id}"
                said = f"revoked token {jti} ({whose} via {done.client_id}, valid until {done.expires_at.isoformat(timespec='seconds')})"
            else:
                said = f"revoked token {jti} (not minted here: refused until {done.expires_at.date().isoformat()})"
            if done.exchanged:
                said += f", and {done.exchanged} narrowed token{'s' if done.exchanged != 1 else ''} exchanged from it"
        else:
            if user is not None:
                _check_user(engine, user, allow_disabled=True)
            else:
                _check_client(engine, client)
            with engine.begin() as conn:
                count = revoke_party(conn, user=user, client=client, actor=actor)
            target = f"user:{user}" if user is not None else f"client:{client}"
            said = f"revoked {count} live access token{'s' if count != 1 else ''} and the sign-ins of {target}"
        try:
            AuditLog(engine).record_revocation(target=target, reason=said, subject=actor)
        except AuditError as exc:
            fail(f"{said}, but the audit row could not be written: {exc}", code=1)
    out.print(said, highlight=False, markup=False, soft_wrap=True)


def admin_name() -> str | None:
    """Who runs the command (the operating-system user), for the audit row."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def mint_checked(
    database: str | None, *, user: str | None, client: str | None, ttl: timedelta, scopes: list[str] | None = None,
    narrowing: list[dict] | None = None,
) -> str:
    """A token from the embedded issuer after the checks `mcp-acl token` makes; exits 2 when one fails.

    The user must exist and be enabled; a client named explicitly must be
    registered (left out, the token names DEFAULT_CLI_CLIENT).
    """
    from mcp_acl.auth.keys import SigningKeys
    from mcp_acl.auth.tokens import issued_token, mint_access_token
    from mcp_acl.store.token_ledger import IssueRefused, record_issued

    settings = _embedded_settings(database)
    with engine_for(database) as engine:
        if user is not None:
            _check_user(engine, user)
        if client is not None:
            _check_client(engine, client)
        try:
            token = mint_access_token(
                SigningKeys(engine),
                issuer=settings.embedded_issuer_url,
                audience=settings.resource_url,
                subject=user,
                client_id=client or DEFAULT_CLI_CLIENT,
                scopes=scopes or [settings.required_scope],
                ttl=ttl,
                extra_claims={"authorization_details": narrowing} if narrowing else None,
            )
        except SigningError as exc:
            fail(str(exc))
        try:
            # Recorded (so revoking the user or client finds it) before it is printed.
            with engine.begin() as conn:
                record_issued(conn, issued_token(token), registered_client=client is not None)
        except IssueRefused as exc:
            fail(f"no token: {exc} (changed while it was being minted)")
        return token


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
    """Add the `token` and `keys` groups to the CLI."""
    from mcp_acl.cli.personal_tokens import register as register_personal

    register_personal(token_app)
    app.add_typer(token_app, name="token")
    app.add_typer(keys_app, name="keys")
