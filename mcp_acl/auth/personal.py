"""Verifying personal access tokens: the resource server's second kind of bearer token.

A token with the personal-token prefix (store/personal_tokens.py) is looked
up by its digest on every request, never cached, so a revocation, an expiry
or a disabled user counts from the next request on every replica. On
SQLite that read runs on the event loop through the standing connection
(store/lookup.py `read_soon`, as the deny-list check does), whose memo
holds only until another connection commits; when it would wait, and on
PostgreSQL, it runs in a worker thread. Recording the use (`last_used_at`,
at most once a minute) is a write, so it always goes to a worker thread,
and its failure never refuses the request. What it
yields is the same `VerifiedToken` a JWT yields, with claims made from the
stored row, so the identity mapping, the deny-list check (by the ledger
`jti`), sessions and the audit treat it like any other token:

    iss        token:NAME   (the audit's issuer column names the token, never its secret)
    sub        the user
    client_id  the client named at creation, else DEFAULT_CLIENT
    scope      the required scope
    exp        the expiry (a token that never expires: year 9999)
    jti        the ledger key (pat-…)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

import anyio.to_thread
from sqlalchemy import Engine

from mcp_acl.auth.verifier import TokenRejected, VerifiedToken, invalid_token
from mcp_acl.store.lookup import StandingConnection, read_soon
from mcp_acl.store.personal_tokens import NEVER, PersonalToken, SecretLookup, looks_personal, touch, touch_due

log = logging.getLogger(__name__)

ISSUER_PREFIX = "token:"
UNKNOWN = "the personal access token is not known here"
UNREADABLE = "the personal access token could not be checked; try again shortly"


def issuer_for(name: str) -> str:
    """The issuer a personal token's identity carries, e.g. `token:bridge`."""
    return ISSUER_PREFIX + name


class PersonalTokens:
    """Personal tokens of one database, verified for one resource server.

    `standing`: the gateway's standing connection (SQLite), for reading on
    the event loop. `record_use=False` verifies without recording a use
    (`mcp-acl check --token`: an administrator's check is not a use).
    """

    def __init__(
        self, engine: Engine, *, required_scope: str = "mcp",
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        standing: StandingConnection | None = None, record_use: bool = True,
    ) -> None:
        self.engine = engine
        self.required_scope = required_scope
        self.standing = standing
        self.record_use = record_use
        self._clock = clock
        self._tokens = SecretLookup(engine)
        # Ledger keys whose use is being written: concurrent requests of one token write it once.
        self._touching: set[str] = set()

    @staticmethod
    def recognises(token: str) -> bool:
        """True for a token of the personal form (it is then never tried as a JWT)."""
        return looks_personal(token)

    async def verify(self, token: str) -> VerifiedToken:
        """The token's VerifiedToken, or TokenRejected (never containing the token)."""
        now = self._clock()
        try:
            found = await read_soon(self.standing, self._tokens.find, token)
        except Exception as exc:
            log.warning("refusing a request: personal tokens could not be read (%s)", exc.__class__.__name__)
            raise TokenRejected(503, "temporarily_unavailable", UNREADABLE) from None
        if found is None:
            raise invalid_token(UNKNOWN)
        state = found.state(now)
        if state != "live":
            refusal = invalid_token(f"the personal access token {found.name!r} was revoked" if state == "revoked"
                                    else f"the personal access token {found.name!r} has expired")
            refusal.signed = True  # a real token of ours, not a forgery
            raise refusal
        if self.record_use and touch_due(found, now) and found.jti not in self._touching:
            self._touching.add(found.jti)
            try:
                await anyio.to_thread.run_sync(self._touch, found, now)
            finally:
                self._touching.discard(found.jti)
        return verified_from(found, self.required_scope)

    def _touch(self, found: PersonalToken, now: datetime) -> None:
        # Bookkeeping only: a failure to record the use never refuses the request.
        try:
            touch(self.engine, found, now)
        except Exception as exc:
            log.warning("could not record the use of personal token %s (%s)", found.name, exc.__class__.__name__)


def verified_from(found: PersonalToken, required_scope: str) -> VerifiedToken:
    """What a live personal token says, in the verifier's terms."""
    expires_at = found.expires_at or NEVER
    claims = {
        "iss": issuer_for(found.name),
        "sub": found.subject,
        "client_id": found.client_id,
        "scope": required_scope,
        "exp": int(expires_at.timestamp()),
        "iat": int(found.created_at.timestamp()),
        "jti": found.jti,
    }
    return VerifiedToken(
        claims=claims, issuer=claims["iss"], subject=found.subject, client_id=found.client_id,
        scopes=frozenset({required_scope}), expires_at=expires_at,
    )
