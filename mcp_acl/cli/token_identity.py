"""Whom a token speaks for, for `mcp-acl check --token`: verified as the gateway verifies it.

The same verifier (signature, issuer, audience, expiry, scope), the same
deny-list and the same claim mapping as the bearer guard, so the answer
`check --token` gives is the one a call with that token gets, narrowing
included. A token the gateway would refuse is refused here, in one line.
Only reads: a personal token checked here is not recorded as used.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from mcp_acl.config import Settings
from mcp_acl.policy import Identity


class TokenNotAccepted(Exception):
    """The gateway would refuse this token (the message says why, never the token)."""


def identity_of_token(settings: Settings, engine: Engine, token: str) -> Identity:
    """The Identity of a token the gateway would accept; TokenNotAccepted otherwise."""
    from mcp_acl.auth.identity import identity_from_claims
    from mcp_acl.auth.setup import build_verifier
    from mcp_acl.auth.verifier import TokenRejected
    from mcp_acl.store.token_ledger import is_revoked

    try:
        # record_use=False: an administrator's check is not a use of a personal token (its `last used` stays).
        verified = asyncio.run(build_verifier(settings, engine, record_use=False).verify(token.strip()))
    except TokenRejected as refusal:
        raise TokenNotAccepted(refusal.description) from None
    jti = verified.claims.get("jti")
    if isinstance(jti, str) and jti:
        with engine.connect() as conn:
            if is_revoked(conn, jti):
                raise TokenNotAccepted("the access token was revoked")
    return identity_from_claims(verified.claims, settings)


def decide_as_token(database: str | None, token: str, target: str, args: dict | None):
    """`mcp-acl check --token`: the decision for the token's caller on `target` now, and that caller; exits 2 on a bad token or target."""
    from datetime import datetime, timezone

    from mcp_acl.cli._common import fail, policy_admin, settings_from_env
    from mcp_acl.policy import PolicyError, decide, parse_target
    from mcp_acl.store import PolicyLoader

    try:
        parse_target(target)
    except PolicyError as exc:
        fail(str(exc))
    settings = settings_from_env(database)
    with policy_admin(database) as admin:
        try:
            identity = identity_of_token(settings, admin.engine, token)
        except TokenNotAccepted as exc:
            fail(f"--token: the gateway would refuse this token: {exc}")
        decision = decide(PolicyLoader(admin.engine).current(), identity, target, args or {}, datetime.now(timezone.utc))
    return decision, identity


def token_caller_line(identity: Identity) -> str:
    """`user alice through the client agent, narrowed to tool:files.read`, for `check --token`."""
    if identity.subject is None:
        text = f"the client {identity.client_id} on its own"
    else:
        text = f"user {identity.subject}" + (f" through the client {identity.client_id}" if identity.client_id else "")
    if identity.narrowing is not None:
        text += f", narrowed to {identity.narrowing.describe()}"
    return text
