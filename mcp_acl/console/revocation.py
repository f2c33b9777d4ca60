"""Whether a console sign-in was revoked: looked up on every console request.

Two reads, each of what is committed now:

1. The sign-in token's `jti` on the access-token deny-list: the gateway's
   own lookup (gateway/revoked.py), so `mcp-acl token revoke JTI` ends the
   session as it ends the token on /mcp.
2. The sign-in itself: the refresh-token family the token came from, when
   the embedded issuer minted it. A console session (8 hours) outlives its
   token (an hour): `token revoke --user/--client` and disabling a user only
   put tokens still live on the deny-list, but they revoke every sign-in
   (the family's refresh token and code, whatever their age), and so does
   the issuer when a code is replayed. A family is found through the
   token's ledger row, which stays a day after the token expires.

Either says revoked: TokenRevoked. Either cannot be read: StoreError, and
the console refuses the request.
"""

from __future__ import annotations

from sqlalchemy import Engine

from mcp_acl.gateway.revoked import REVOKED_MESSAGE, RevokedTokens, TokenRevoked
from mcp_acl.store.lookup import Lookup

# Placeholders `?` (see store.lookup.Lookup). Both family_id columns are indexed.
SIGN_IN_REVOKED_SQL = (
    "SELECT 1 FROM access_tokens a WHERE a.jti = ? AND a.family_id IS NOT NULL AND ("
    "EXISTS (SELECT 1 FROM oauth_refresh_tokens r WHERE r.family_id = a.family_id AND r.revoked_at IS NOT NULL)"
    " OR EXISTS (SELECT 1 FROM oauth_codes c WHERE c.family_id = a.family_id AND c.revoked_at IS NOT NULL))"
)


class SignInRevocations:
    """The deny-list, then the sign-in's family, for one jti."""

    def __init__(self, engine: Engine) -> None:
        self.tokens = RevokedTokens(engine)
        self._family = Lookup(engine, SIGN_IN_REVOKED_SQL, "the console sign-in's revocation could not be read")

    def check(self, jti: str) -> None:
        """Raise TokenRevoked if the token or its sign-in was revoked (StoreError if the database cannot say)."""
        self.tokens.check(jti)
        if self._family.first((jti,)) is not None:
            raise TokenRevoked(REVOKED_MESSAGE)
