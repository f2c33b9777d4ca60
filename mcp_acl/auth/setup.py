"""Choosing the token verifier from the settings: the embedded issuer or an external one."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from collections.abc import Callable

from sqlalchemy import Engine

from mcp_acl.auth.errors import AuthConfigError
from mcp_acl.auth.jwks import embedded_key_set, remote_key_set
from mcp_acl.auth.keys import SigningKeys
from mcp_acl.auth.personal import PersonalTokens
from mcp_acl.auth.tokens import ACCESS_TOKEN_TYPE
from mcp_acl.auth.verifier import AccessTokenVerifier
from mcp_acl.config import Settings
from mcp_acl.store.lookup import StandingConnection


def build_verifier(
    settings: Settings, engine: Engine, *, clock: Callable[[], float] = time.time,
    standing: StandingConnection | None = None, record_use: bool = True,
) -> AccessTokenVerifier:
    """The verifier the settings call for.

    Embedded (no MCP_ACL_ISSUER): issuer `settings.embedded_issuer_url`, keys
    from the database, `typ` at+jwt only; an active key is created if none
    exists, so the JWKS is never empty. External: issuer MCP_ACL_ISSUER, keys
    from MCP_ACL_JWKS_URL or the issuer's discovery document, `typ` one of
    MCP_ACL_TOKEN_TYPES. Either way personal access tokens (auth/personal.py)
    from this database are accepted too: read on the event loop through
    `standing` (the gateway's, SQLite) when given, and recorded as used
    unless `record_use` is False (a check that is not a use).
    """
    personal = PersonalTokens(
        engine, required_scope=settings.required_scope, clock=lambda: datetime.fromtimestamp(clock(), timezone.utc),
        standing=standing, record_use=record_use,
    )
    if settings.embedded_issuer:
        if settings.jwks_url:
            raise AuthConfigError("MCP_ACL_JWKS_URL needs MCP_ACL_ISSUER: the tokens' issuer must be known to be checked")
        keys = SigningKeys(engine, clock=clock)
        keys.ensure_active()
        return AccessTokenVerifier(
            issuer=settings.embedded_issuer_url,
            audience=settings.resource_url,
            keys=embedded_key_set(keys, clock=clock),
            required_scope=settings.required_scope,
            token_types=(ACCESS_TOKEN_TYPE,),
            leeway=settings.clock_leeway,
            clock=clock,
            personal=personal,
        )
    return AccessTokenVerifier(
        issuer=settings.issuer,
        audience=settings.resource_url,
        keys=remote_key_set(settings.issuer, settings.jwks_url, clock=clock),
        required_scope=settings.required_scope,
        token_types=settings.token_types,
        leeway=settings.clock_leeway,
        clock=clock,
        personal=personal,
    )


def signing_keys(settings: Settings, engine: Engine) -> SigningKeys | None:
    """The embedded issuer's keys, or None when an external issuer is configured (for `auth_routes`)."""
    return SigningKeys(engine) if settings.embedded_issuer else None
