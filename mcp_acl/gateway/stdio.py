"""The same gateway over stdio, for clients that launch their servers as processes.

There is no HTTP request to carry a token, so the caller's token comes from
`MCP_ACL_TOKEN` and is verified once, at start, exactly as the HTTP
middleware verifies it; the process then serves one session for that
identity until the token expires (later requests are refused: restart with
a new token). An invalid or missing token ends the process before anything
is served (the caller never sees a catalogue).
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime

import anyio
import anyio.to_thread
from mcp.server.stdio import stdio_server
from sqlalchemy import Engine

from mcp_acl.audit import AuditLog
from mcp_acl.auth import caller_token
from mcp_acl.auth.identity import identity_from_claims
from mcp_acl.auth.middleware import REVOKED
from mcp_acl.auth.setup import build_verifier
from mcp_acl.auth.verifier import TokenRejected
from mcp_acl.config import Settings
from mcp_acl.gateway.edge import FixedEdge
from mcp_acl.gateway.revoked import RevokedTokens
from mcp_acl.gateway.runtime import Gateway
from mcp_acl.gateway.sessions import CLOSED
from mcp_acl.policy import Identity
from mcp_acl.store.personal_tokens import looks_personal

TOKEN_ENV = "MCP_ACL_TOKEN"


class StdioRefused(Exception):
    """The stdio server will not start for this caller; the message says why, in one line."""


async def verify_stdio_token(settings: Settings, engine: Engine, token: str | None) -> tuple[Identity, datetime, str | None]:
    """The identity of `token`, when it expires and its jti, verified as on HTTP; raises StdioRefused (and audits it) otherwise.

    A revoked token is refused here too; one revoked later is refused at its next call.
    """
    if not token:
        AuditLog(engine).record_authentication(reason=f"no token in {TOKEN_ENV} (stdio)")
        raise StdioRefused(
            f"set {TOKEN_ENV} to an access token (mint one with `mcp-acl token --user NAME`, or a personal one with `mcp-acl token create`)"
        )
    verifier = build_verifier(settings, engine)
    try:
        verified = await verifier.verify(token)
    except TokenRejected as exc:
        AuditLog(engine).record_authentication(reason=f"{exc.error}: {exc.description} (stdio)")
        raise StdioRefused(f"the token in {TOKEN_ENV} was refused: {exc.description}") from None
    jti = verified.claims.get("jti") if isinstance(verified.claims.get("jti"), str) else None
    if jti is not None:
        try:
            revoked = await RevokedTokens(engine).is_revoked(jti)
        except Exception as exc:
            raise StdioRefused(f"the token in {TOKEN_ENV} could not be checked against the revocation list ({exc})") from None
        if revoked:
            AuditLog(engine).record_authentication(reason=f"invalid_token: {REVOKED} (stdio)")
            raise StdioRefused(f"the token in {TOKEN_ENV} was refused: {REVOKED}")
    return identity_from_claims(verified.claims, settings), verified.expires_at, jti


async def serve_stdio(gateway: Gateway, identity: Identity, expires_at: datetime, token_id: str | None = None) -> None:
    """Serve one session for `identity` on stdin/stdout until the client closes it (refusing requests after `expires_at`, or once `token_id` is revoked)."""
    session_id = uuid.uuid4().hex
    server, guard = gateway.server(FixedEdge(identity, session_id, expires_at, token_id=token_id))
    await anyio.to_thread.run_sync(gateway.sessions.open, session_id, identity, "stdio")
    # The verified token is the caller's for the process's life: an upstream's token exchange presents it.
    token = os.environ.get(TOKEN_ENV)
    # Not a personal token: it is ours alone, never shown to another token endpoint.
    held = caller_token.bind(caller_token.CallerToken(token, expires_at.timestamp())) if token and not looks_personal(token) else None
    try:
        async with stdio_server() as (read_stream, write_stream), anyio.create_task_group() as tg:
            await tg.start(gateway.run_background)
            await server.run(read_stream, write_stream, server.create_initialization_options())
            tg.cancel_scope.cancel()
    finally:
        if held is not None:
            caller_token.unbind(held)
        guard.forget(session_id)
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(gateway.sessions.end, session_id, CLOSED)
