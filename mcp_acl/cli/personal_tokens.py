"""`mcp-acl token create` and `mcp-acl token list`: personal access tokens, and their side of `token revoke`.

A personal token is for a client that can only send a fixed
`Authorization: Bearer` header (bridges, MCP Inspector, scripts). It is
printed once; the database keeps its digest (store/personal_tokens.py).
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated

import typer
from sqlalchemy import Engine

from mcp_acl.cli._common import DatabaseOpt, JsonOpt, cells, engine_for, fail, out, print_json, table
from mcp_acl.expiry import ExpiryError, parse_expiry
from mcp_acl.store.personal_tokens import (
    DEFAULT_CLIENT, NEVER, PersonalTokenError, SecretLookup, check_name, create, find_by_name,
    listing, looks_personal, revoke,
)
from mcp_acl.store.token_ledger import IssueRefused, ledger_entry, utcnow

DEFAULT_EXPIRY = "90d"


def parse_token_expiry(text: str, now: datetime) -> datetime | None:
    """When a token made now with `--expires text` expires: a duration, an ISO 8601 time, or `never` (None)."""
    if text.strip().lower() == "never":
        return None
    try:
        moment = parse_expiry(text, now)
    except OverflowError:
        moment = NEVER
    except ExpiryError as exc:
        raise ValueError(str(exc).replace("the grant would never apply", "the token would never work")) from None
    if moment >= NEVER:
        raise ValueError(f"--expires {text} is too far away: use `never` for a token that does not expire")
    return moment


def token_create(
    user: Annotated[str, typer.Option("--user", help="The user the token speaks for (must exist and be enabled).")],
    name: Annotated[str, typer.Option("--name", help="A name for the token, unique among live tokens: it is what `token list`, `token revoke` and the audit show.")],
    client: Annotated[
        str | None,
        typer.Option("--client", help=f"The client it acts through (must be registered; its ceiling applies). Default: {DEFAULT_CLIENT}."),
    ] = None,
    expires: Annotated[
        str, typer.Option("--expires", help="When it stops working: a duration (30d, 12w), an ISO 8601 time, or never.")
    ] = DEFAULT_EXPIRY,
    database: DatabaseOpt = None,
) -> None:
    """Make a personal access token for a client that sends a fixed header; prints it once, on stdout.

    It is accepted at /mcp (`Authorization: Bearer …`) and by `mcp-acl stdio`
    (MCP_ACL_TOKEN) like an OAuth token, until it expires or is revoked:

      export BRIDGE_TOKEN=$(mcp-acl token create --user alice --name bridge --expires 30d)
      mcp-acl token create --user bob --name inspector --client ollama-agent --expires never

    Only its digest is stored: a lost token cannot be shown again (revoke it and make another).
    """
    from mcp_acl.cli.tokens import _check_client, _check_user, admin_name

    try:
        check_name(name)
        expires_at = parse_token_expiry(expires, utcnow())
    except (PersonalTokenError, ValueError) as exc:
        fail(str(exc))
    with engine_for(database) as engine:
        _check_user(engine, user)
        if client is not None:
            _check_client(engine, client)
        try:
            secret, made = create(engine, name=name, user=user, client=client, expires_at=expires_at, actor=admin_name())
        except PersonalTokenError as exc:
            fail(str(exc))
        except IssueRefused as exc:
            fail(f"no token: {exc} (changed while it was being made)")
    until = made.expires_at.isoformat(timespec="seconds") if made.expires_at else "never expires"
    # The token alone on stdout (for `$(…)`); what it is, on stderr.
    sys.stderr.write(f"personal token {made.name} for {made.subject} via {made.client_id} ({until}); shown only now\n")
    sys.stdout.write(secret + "\n")


def token_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List personal access tokens: name, user, client, state, created, last used, expiry (never the tokens).

    Last used is recorded at most once a minute per token.

    Example: mcp-acl token list --user alice
    """
    now = utcnow()
    with engine_for(database) as engine:
        found = listing(engine, user)
    if as_json:
        print_json([token.as_dict(now) for token in found])
        return
    if not found:
        out.print("no personal tokens" + (f" of {user}" if user else "") + ": make one with `mcp-acl token create`")
        return

    def when(value: datetime | None, empty: str) -> str:
        return value.isoformat(timespec="minutes") if value is not None else empty

    rows = [
        cells(p.name, p.subject, p.client_id, p.state(now), when(p.created_at, "-"), when(p.last_used_at, "never"),
              when(p.expires_at, "never"))
        for p in found
    ]
    out.print(table("name", "user", "client", "state", "created", "last used", "expires", rows=rows))


def revoke_personal(engine: Engine, given: str, actor: str | None) -> tuple[str, str] | None:
    """Revoke the personal token `given` names (its name, or the token itself); (audit target, sentence), or None if it names none.

    A name that is also another token's jti fails as ambiguous rather than
    revoking one and leaving the other live. A token (its prefix says so)
    that is not known here fails instead of falling through.
    """
    if looks_personal(given):
        token = SecretLookup(engine).find(given)
        if token is None:
            fail("that personal token is not known here (was it made on another database?)")
    else:
        token = find_by_name(engine, given)
        if token is None:
            return None
        with engine.connect() as conn:
            other = ledger_entry(conn, given)
        if other is not None and other.jti != token.jti:
            fail(f"{given!r} is both a personal token's name and another token's jti: revoke the token by its secret, or by --user/--client")
    done = revoke(engine, token, actor)
    if done.already:
        said = f"personal token {token.name} was already revoked"
    else:
        said = f"revoked personal token {token.name} ({token.subject} via {token.client_id})"
    return f"token:{token.name}", said


def register(token_app: typer.Typer) -> None:
    """Add `create` and `list` to the `token` group (once, however often the CLI is assembled)."""
    if any(command.name == "create" for command in token_app.registered_commands):
        return
    token_app.command("create")(token_create)
    token_app.command("list")(token_list)
