"""Passwords: Argon2 hashes, one answer for wrong and unknown, disabled users."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mcp_acl.oauth.passwords import LoginOutcome, PasswordError, check_login, hash_password, set_password
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t


@pytest.fixture
def admin(engine) -> PolicyAdmin:
    admin = PolicyAdmin(engine)
    admin.add_user("alice")
    admin.add_user("nopass")
    return admin


def test_right_password_signs_in_and_the_hash_is_argon2id(engine, admin):
    set_password(engine, "alice", "correct horse")
    assert check_login(engine, "alice", "correct horse") is LoginOutcome.OK
    with engine.connect() as conn:
        stored = conn.execute(select(t.users.c.password_hash).where(t.users.c.name == "alice")).scalar()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


def test_wrong_password_unknown_user_and_no_password_are_all_refused(engine, admin):
    set_password(engine, "alice", "correct horse")
    assert check_login(engine, "alice", "wrong horse") is LoginOutcome.REFUSED
    assert check_login(engine, "nobody", "correct horse") is LoginOutcome.REFUSED
    assert check_login(engine, "nopass", "no user has this password") is LoginOutcome.REFUSED


def test_disabled_user_is_told_so_only_with_the_right_password(engine, admin):
    set_password(engine, "alice", "correct horse")
    admin.set_user_disabled("alice", True)
    assert check_login(engine, "alice", "correct horse") is LoginOutcome.DISABLED
    assert check_login(engine, "alice", "wrong horse") is LoginOutcome.REFUSED


def test_short_passwords_are_refused():
    with pytest.raises(PasswordError):
        hash_password("short")


def test_password_of_an_unknown_user_cannot_be_set(engine):
    with pytest.raises(PasswordError):
        set_password(engine, "nobody", "correct horse")


def test_a_new_password_replaces_the_old(engine, admin):
    set_password(engine, "alice", "correct horse")
    set_password(engine, "alice", "battery staple")
    assert check_login(engine, "alice", "correct horse") is LoginOutcome.REFUSED
    assert check_login(engine, "alice", "battery staple") is LoginOutcome.OK


def test_a_name_with_a_nul_byte_is_refused_like_any_unknown_name(engine, admin):
    # On PostgreSQL the lookup itself failed (text cannot hold NUL): the sign-in page answered 500.
    from mcp_acl.oauth.passwords import known_user

    assert check_login(engine, "alice\x00", "correct horse battery") is LoginOutcome.REFUSED
    assert known_user(engine, "alice\x00") is False
