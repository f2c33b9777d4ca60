"""Refresh tokens (RFC 6749 §6), rotated on every use, in families.

Each code exchange starts a family; each refresh uses up the presented token
and issues the next one in the same family (OAuth 2.0 Security BCP, RFC 9700
§4.14.2). A token presented after it was used means two parties hold the
family, one of them a thief, and the server cannot tell which: the whole
family is revoked and both must sign in again. Revoking a family also
revokes the access tokens minted from it (store/token_ledger.py).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from authlib.oauth2.rfc6749 import TokenMixin
from sqlalchemy import Connection, Engine, delete, insert, select, update

from mcp_acl.oauth._digest import digest, new_token
from mcp_acl.store import tables as t
from mcp_acl.store.token_ledger import revoke_party

_KEEP_EXPIRED_FOR = timedelta(days=1)


@dataclass(frozen=True)
class RefreshToken(TokenMixin):
    """A refresh token that was just used up (or looked up for revocation)."""

    family_id: str
    client_id: str
    user_name: str
    scope: str
    resource: str
    expires_at: datetime

    def check_client(self, client) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.expires_at - datetime.now(timezone.utc)).total_seconds()))

    def is_expired(self) -> bool:
        return self.expires_at <= datetime.now(timezone.utc)

    def is_revoked(self) -> bool:
        return False


def _token(row) -> RefreshToken:
    return RefreshToken(row.family_id, row.client_id, row.user_name, row.scope, row.resource, row.expires_at)


class RefreshTokenStore:
    """Issues, rotates and revokes refresh tokens."""

    def __init__(self, engine: Engine, ttl: timedelta = timedelta(days=30)) -> None:
        self.engine = engine
        self.ttl = ttl

    def issue(
        self, *, family_id: str, client_id: str, user_name: str, scope: str, resource: str, conn: Connection | None = None,
    ) -> str:
        """Store a new refresh token in `family_id` (as its digest) and return it; in `conn`'s transaction if given."""
        token = new_token()
        now = datetime.now(timezone.utc)
        rt = t.oauth_refresh_tokens
        with nullcontext(conn) if conn is not None else self.engine.begin() as c:
            # Tokens a day past expiry go: used ones no longer need to catch a replay.
            c.execute(delete(rt).where(rt.c.expires_at < now - _KEEP_EXPIRED_FOR))
            c.execute(
                insert(rt).values(
                    token_hash=digest(token), family_id=family_id, client_id=client_id, user_name=user_name,
                    scope=scope, resource=resource, created_at=now, expires_at=now + self.ttl,
                )
            )
        return token

    def use(self, token: str, client_id: str) -> RefreshToken | None:
        """Use up `token` for `client_id`; None if it cannot be used (a replay revokes its family)."""
        if not isinstance(token, str) or not token:
            return None
        key = digest(token)
        now = datetime.now(timezone.utc)
        rt = t.oauth_refresh_tokens
        with self.engine.begin() as conn:
            row = conn.execute(select(rt).where(rt.c.token_hash == key)).first()
            if row is None or row.revoked_at is not None:
                return None
            if row.client_id != client_id:
                # Another client holds this client's token: it leaked.
                self._revoke_family(conn, row.family_id, now)
                return None
            claimed = conn.execute(
                update(rt).where(rt.c.token_hash == key, rt.c.used_at.is_(None), rt.c.revoked_at.is_(None)).values(used_at=now)
            ).rowcount
            if not claimed:
                self._revoke_family(conn, row.family_id, now)
                return None
        if row.expires_at <= now:
            return None
        return _token(row)

    def find(self, token: str) -> RefreshToken | None:
        """The live refresh token `token` (for revocation), or None."""
        if not isinstance(token, str) or not token:
            return None
        rt = t.oauth_refresh_tokens
        with self.engine.connect() as conn:
            row = conn.execute(select(rt).where(rt.c.token_hash == digest(token), rt.c.revoked_at.is_(None))).first()
        return _token(row) if row is not None else None

    def revoke_family(self, family_id: str) -> None:
        """Revoke every refresh token of a family, its code and the live access tokens minted from it."""
        with self.engine.begin() as conn:
            self._revoke_family(conn, family_id, datetime.now(timezone.utc))

    def family_revoked(self, family_id: str) -> bool:
        """Whether no token of the family can be used any more."""
        rt = t.oauth_refresh_tokens
        with self.engine.connect() as conn:
            live = conn.execute(
                select(rt.c.token_hash).where(rt.c.family_id == family_id, rt.c.revoked_at.is_(None), rt.c.used_at.is_(None))
            ).first()
        return live is None

    @staticmethod
    def _revoke_family(conn, family_id: str, now: datetime) -> None:
        # With the family's code and the access tokens minted from it (token_ledger.revoke_party).
        revoke_party(conn, family=family_id, actor="oauth:family-revoked", now=now)
