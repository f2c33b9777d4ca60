"""Minting access tokens: the JWT profile of RFC 9068.

https://www.rfc-editor.org/rfc/rfc9068

A token is a JWS (header `typ: at+jwt`) carrying iss, sub, aud, client_id,
scope (space-separated), iat, nbf, exp and jti. For a service token (client
credentials, no user) RFC 9068 §2.2 puts the client id in `sub`; the reader
side (`identity_from_claims`) turns `sub == client_id` back into a service
identity, so a user token whose subject equals its client id is refused here.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from mcp_acl.auth.compact import decode_json_object
from mcp_acl.auth.errors import SigningError
from mcp_acl.auth.keys import SigningKeys
from mcp_acl.store.token_ledger import IssuedToken

ACCESS_TOKEN_TYPE = "at+jwt"
REGISTERED_CLAIMS = frozenset({"iss", "sub", "aud", "client_id", "scope", "iat", "nbf", "exp", "jti"})
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def scope_string(scopes: Iterable[str]) -> str:
    """The `scope` claim for `scopes`: each checked, duplicates dropped, order kept.

    Example: ["mcp", "files", "mcp"] -> "mcp files"
    """
    seen: dict[str, None] = {}
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise SigningError(f"not a valid scope: {scope!r}")
        seen.setdefault(scope, None)
    return " ".join(seen)


def mint_access_token(
    keys: SigningKeys,
    *,
    issuer: str,
    audience: str,
    subject: str | None,
    client_id: str,
    scopes: Iterable[str],
    ttl: timedelta,
    extra_claims: dict | None = None,
) -> str:
    """An RFC 9068 access token for `subject` (None: a service token) using `client_id`."""
    if not client_id:
        raise SigningError("an access token needs a client id")
    if subject == "":
        raise SigningError("the subject is empty; pass None for a service token")
    if subject is not None and subject == client_id:
        raise SigningError(f"user {subject!r} has the same name as the client: the token would read as a service token")
    if ttl <= timedelta(0):
        raise SigningError("the token lifetime must be positive")
    clash = REGISTERED_CLAIMS & set(extra_claims or {})
    if clash:
        raise SigningError(f"extra claims may not replace {', '.join(sorted(clash))}")
    now = int(keys.now().timestamp())
    claims = {
        **(extra_claims or {}),
        "iss": issuer,
        "sub": subject if subject is not None else client_id,
        "aud": audience,
        "client_id": client_id,
        "scope": scope_string(scopes),
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl.total_seconds()),
        # Hex, not base64url: an id that starts with "-" would read as an option to `token revoke`.
        "jti": secrets.token_hex(16),
    }
    return keys.sign(claims, typ=ACCESS_TOKEN_TYPE)


def issued_token(token: str) -> IssuedToken:
    """What the token ledger records of a token `mint_access_token` just returned (its own claims, unverified)."""
    claims = decode_json_object(token.split(".")[1], "not a minted token")
    return IssuedToken(
        jti=claims["jti"],
        # A service token carries its client in `sub` (RFC 9068 §2.2); the ledger's subject is the user.
        subject=None if claims["sub"] == claims["client_id"] else claims["sub"],
        client_id=claims["client_id"],
        issued_at=datetime.fromtimestamp(claims["iat"], timezone.utc),
        expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc),
    )
