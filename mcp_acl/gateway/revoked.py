"""Refusing revoked access tokens: the deny-list lookup, at the door and in the admission.

Every HTTP request's token is looked up once the bearer guard has verified
it (a revoked one gets 401 `invalid_token`, so the client signs in again),
and every tools/call, resources/read and prompts/get looks it up again in
its admission, on the connection that reads the policy revision and writes
the audit row: a revocation committed after the request came in still
stops the call. The lookup is one primary-key read (store/token_ledger.py);
on SQLite it runs on the event loop through the standing connection and
its memo (the answer holds until another connection commits), elsewhere
in a worker thread. If the database cannot say, the request is refused.

A token without a `jti` (some external issuers) cannot be revoked one by
one; disabling its user or client still refuses its calls through the policy.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from mcp_acl.gateway.sessions import SessionRefused
from mcp_acl.store.lookup import Lookup, StandingConnection, read_soon
from mcp_acl.store.token_ledger import REVOKED_SQL

REVOKED_MESSAGE = "This access token was revoked; sign in again to get a new one."

SessionCheck = Callable[[], None]


class TokenRevoked(SessionRefused):
    """The request's access token is on the deny-list (shown to the caller like a refused session)."""


class RevokedTokens:
    """Whether a token's jti is on the deny-list, as committed now."""

    def __init__(self, engine: Engine, standing: StandingConnection | None = None) -> None:
        # Memoised on the standing connection, which never writes the ledger.
        self._lookup = Lookup(engine, REVOKED_SQL, "the token deny-list could not be read", memo=True)
        self.standing = standing

    def check(self, jti: str) -> None:
        """Raise TokenRevoked if `jti` is revoked (StoreError if the database cannot say)."""
        if self._lookup.first((jti,)) is not None:
            raise TokenRevoked(REVOKED_MESSAGE)

    def admission_check(self, jti: str | None, session_check: SessionCheck | None) -> SessionCheck | None:
        """The check an admission runs first: the token's, then the session's (either may be absent)."""
        if jti is None:
            return session_check

        def both() -> None:
            self.check(jti)
            if session_check is not None:
                session_check()

        return both

    async def is_revoked(self, jti: str) -> bool:
        """For the bearer guard: True if revoked; raises when the database cannot say."""
        return await read_soon(self.standing, self._read, jti)

    def _read(self, jti: str) -> bool:
        return self._lookup.first((jti,)) is not None
