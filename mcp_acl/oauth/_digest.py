"""Random credentials and the digests they are stored as.

Codes, refresh tokens, client secrets and sign-in request ids are 256-bit
random values, so one SHA-256 pass is enough to make a stolen database
useless to a thief (no salt or slow hash is needed for values nobody can
guess); user passwords are another matter (see passwords.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    """A fresh random credential: 32 bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """The SHA-256 of `value` as 64 hex digits: the form a credential is stored in."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def matches(value: str, stored_digest: str | None) -> bool:
    """Whether `value` hashes to `stored_digest`, compared in constant time."""
    if not stored_digest:
        return False
    return hmac.compare_digest(digest(value), stored_digest)
