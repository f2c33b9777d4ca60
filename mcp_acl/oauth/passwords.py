"""User passwords for the sign-in page: Argon2id hashes in `users.password_hash`.

A wrong password, an unknown user and a user without a password all get the
same answer, after the same amount of work (an unknown name is checked
against a dummy hash), so the sign-in page does not reveal who exists.
"""

from __future__ import annotations

import enum
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select, update

from mcp_acl.store import tables as t

MIN_LENGTH = 8
MAX_LENGTH = 1024  # Argon2 takes any length; a cap keeps a sign-in POST cheap.

_hasher = PasswordHasher()


class PasswordError(ValueError):
    """A password that cannot be set (too short, too long, unknown user)."""


class LoginOutcome(enum.Enum):
    """What a sign-in attempt came to."""

    OK = "ok"
    REFUSED = "refused"  # wrong password, unknown user or no password: one answer
    DISABLED = "disabled"  # the right password for a disabled user


def check_strength(password: str) -> None:
    """Raise PasswordError unless `password` is acceptable."""
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"the password is too short: use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"the password is too long: use at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """The Argon2id hash of an acceptable password."""
    check_strength(password)
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("no user has this password")


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def set_password(engine: Engine, name: str, password: str) -> None:
    """Set (or replace) the password of an existing user."""
    hashed = hash_password(password)
    with engine.begin() as conn:
        done = conn.execute(update(t.users).where(t.users.c.name == name).values(password_hash=hashed)).rowcount
    if not done:
        raise PasswordError(f"user {name!r} does not exist (add it with `mcp-acl user add {name}`)")


def check_login(engine: Engine, name: str, password: str) -> LoginOutcome:
    """Check a user name and password as typed on the sign-in page."""
    if len(password) > MAX_LENGTH:
        return LoginOutcome.REFUSED
    if "\x00" in name:
        # No user can have it (PostgreSQL text cannot even hold it, and the
        # query would fail): refused, after the same work as any unknown name.
        _verify(None, password)
        return LoginOutcome.REFUSED
    with engine.connect() as conn:
        row = conn.execute(select(t.users.c.password_hash, t.users.c.disabled).where(t.users.c.name == name)).first()
    stored = row.password_hash if row is not None else None
    if not _verify(stored, password):
        return LoginOutcome.REFUSED
    if row.disabled:
        return LoginOutcome.DISABLED
    if _hasher.check_needs_rehash(stored):
        # Stronger parameters since this hash was made: upgrade it while we hold the password.
        with engine.begin() as conn:
            conn.execute(update(t.users).where(t.users.c.name == name).values(password_hash=_hasher.hash(password)))
    return LoginOutcome.OK


def known_user(engine: Engine, name: str) -> bool:
    """True when `name` is a user (for the audit log only, never for the sign-in page's answer)."""
    if "\x00" in name:
        return False
    with engine.connect() as conn:
        return conn.execute(select(t.users.c.name).where(t.users.c.name == name)).first() is not None
