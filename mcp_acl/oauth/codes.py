"""Authorization codes (RFC 6749 §4.1): short-lived, single use, bound to the
client, the redirect URI, the PKCE challenge and the resource.

A code is consumed by one atomic UPDATE, so two concurrent exchanges of the
same code cannot both win. A code presented a second time also revokes the
refresh tokens issued from its first use (RFC 6749 §4.1.2: the server
"SHOULD revoke … all tokens previously issued based on that code").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin
from sqlalchemy import Engine, delete, insert, select, update

from mcp_acl.oauth._digest import digest, new_token
from mcp_acl.oauth.refresh_tokens import RefreshTokenStore
from mcp_acl.store import tables as t

_KEEP_EXPIRED_FOR = timedelta(days=1)


@dataclass(frozen=True)
class AuthorizationCode(AuthorizationCodeMixin):
    """A consumed authorization code: what the token endpoint needs from it."""

    client_id: str
    user_name: str
    redirect_uri: str | None
    scope: str
    resource: str
    code_challenge: str
    code_challenge_method: str
    family_id: str

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class CodeStore:
    """Issues and consumes authorization codes."""

    def __init__(self, engine: Engine, refresh_tokens: RefreshTokenStore, ttl: timedelta = timedelta(minutes=5)) -> None:
        self.engine = engine
        self.refresh_tokens = refresh_tokens
        self.ttl = ttl

    def save(
        self, code: str, *, client_id: str, user_name: str, redirect_uri: str | None, scope: str, resource: str,
        code_challenge: str, code_challenge_method: str,
    ) -> None:
        """Store a freshly generated code (as its digest) with what it is bound to."""
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            # Old codes go as new ones come; a day past expiry nobody can use them.
            conn.execute(delete(t.oauth_codes).where(t.oauth_codes.c.expires_at < now - _KEEP_EXPIRED_FOR))
            conn.execute(
                insert(t.oauth_codes).values(
                    code_hash=digest(code), client_id=client_id, user_name=user_name, redirect_uri=redirect_uri,
                    scope=scope, resource=resource, code_challenge=code_challenge,
                    code_challenge_method=code_challenge_method, family_id=new_token(),
                    created_at=now, expires_at=now + self.ttl,
                )
            )

    def consume(self, code: str, client_id: str) -> AuthorizationCode | None:
        """Use up `code` for `client_id`; None if it is unknown, someone else's, used or expired."""
        if not isinstance(code, str) or not code:
            return None
        key = digest(code)
        now = datetime.now(timezone.utc)
        codes = t.oauth_codes
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(codes).where(codes.c.code_hash == key, codes.c.used_at.is_(None)).values(used_at=now)
            ).rowcount
            row = conn.execute(select(codes).where(codes.c.code_hash == key)).first()
        if row is None:
            return None
        if not claimed:
            # Replayed: whoever holds it now may be an attacker; end what it started.
            self.refresh_tokens.revoke_family(row.family_id)
            return None
        # Checked after the claim, so a wrong-client or late attempt burns the code too.
        # A code whose family was revoked (its user's grants revoked) is spent.
        if row.client_id != client_id or row.expires_at <= now or row.revoked_at is not None:
            return None
        return AuthorizationCode(
            client_id=row.client_id, user_name=row.user_name, redirect_uri=row.redirect_uri, scope=row.scope,
            resource=row.resource, code_challenge=row.code_challenge,
            code_challenge_method=row.code_challenge_method, family_id=row.family_id,
        )
