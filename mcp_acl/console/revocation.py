"""Whether a console sign-in was revoked: looked up on every console request.

One read of what is committed now, of the sign-in token's ledger row by its
`jti` (primary key), which says revoked when either holds:

1. The token is on the access-token deny-list (`revoked_at` set: the
   gateway's own test, store/token_ledger.REVOKED_SQL), so `mcp-acl token
   revoke JTI` ends the session as it ends the token on /mcp.
2. The sign-in itself was revoked: the refresh-token family the token came
   from, when the embedded issuer minted it. A console session (8 hours)
   outlives its token (an hour): `token revoke --user/--client` and
   disabling a user only put tokens still live on the deny-list, but they
   revoke every sign-in (the family's refresh token and code, whatever
   their age), and so does the issuer when a code is replayed. A family is
   found through the token's ledger row, which stays a day after the token
   expires.

Both in one statement, so a request reads the row once, in one round trip.
Revoked: TokenRevoked. Cannot be read: StoreError, and the console refuses
the request.
"""

from __future__ import annotations

from sqlalchemy import Engine

from mcp_acl.gateway.revoked import REVOKED_MESSAGE, TokenRevoked
from mcp_acl.store.lookup import Lookup

# Placeholders `?` (see store.lookup.Lookup). `a.revoked_at IS NOT NULL` is
# REVOKED_SQL's test; both family_id columns are indexed (a NULL family matches none).
SIGN_IN_REVOKED_SQL = (
    "SELECT 1 FROM access_tokens a WHERE a.jti = ? AND (a.revoked_at IS NOT NULL"
    " OR EXISTS (SELECT 1 FROM oauth_refresh_tokens r WHERE r.family_id = a.family_id AND r.revoked_at IS NOT NULL)"
    " OR EXISTS (SELECT 1 FROM oauth_codes c WHERE c.family_id = a.family_id AND c.revoked_at IS NOT NULL))"
)


class SignInRevocations:
    """The deny-list and the sign-in's family, for one jti, in one read."""

    def __init__(self, engine: Engine) -> None:
        self._lookup = Lookup(engine, SIGN_IN_REVOKED_SQL, "the token deny-list could not be read")

    def check(self, jti: str) -> None:
        """Raise TokenRevoked if the token or its sign-in was revoked (StoreError if the database cannot say)."""
        if self._lookup.first((jti,)) is not None:
            raise TokenRevoked(REVOKED_MESSAGE)
