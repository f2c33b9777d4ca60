"""The console's parts that need no browser: signed cookies, where a sign-in may return, what run-demo prints."""

from __future__ import annotations

from mcp_acl.cli.quickstart import instructions
from mcp_acl.console.context import bare_url
from mcp_acl.console.cookies import SESSION_IDLE, SESSION_LIFETIME, ConsoleSession, Signer
from mcp_acl.console.signin import _safe_next, callback_uri


def test_a_signed_value_reads_back_only_unchanged_with_the_same_key_and_purpose():
    signer = Signer(b"k" * 32)
    cookie = signer.sign("console-session", {"subject": "admin"})
    assert signer.read("console-session", cookie) == {"subject": "admin"}
    body, mac = cookie.split(".")
    forged = Signer(b"k" * 32).sign("console-session", {"subject": "root"}).split(".")[0] + "." + mac
    assert signer.read("console-session", forged) is None
    assert signer.read("console-sign-in", cookie) is None  # another kind of cookie
    assert Signer(b"x" * 32).read("console-session", cookie) is None  # another key
    assert signer.read("console-session", None) is None and signer.read("console-session", "a.b.c") is None


def test_a_session_ends_after_its_lifetime_or_when_idle():
    session = ConsoleSession("admin", "mcp-acl-console", "http://127.0.0.1:8000", "j1", 4600.0, (), "t", 1000.0, 1000.0)
    assert session.live(1000.0 + SESSION_IDLE - 1)
    assert not session.live(1000.0 + SESSION_IDLE + 1)
    busy = session.seen_at(1000.0 + SESSION_LIFETIME - 10)
    assert busy.live(1000.0 + SESSION_LIFETIME - 5) and not busy.live(1000.0 + SESSION_LIFETIME + 1)
    assert ConsoleSession.from_value(session.as_value()) == session
    assert ConsoleSession.from_value({"subject": "admin"}) is None


def test_a_session_keeps_no_roles_and_a_claimed_role_only_while_its_token_is_valid():
    session = ConsoleSession("alice", "console-app", "https://idp.example", "j1", 2000.0, ("admin",), "t", 1000.0, 1000.0)
    assert session.roles_claimed(1999.0) == {"admin"} and session.roles_claimed(2000.0) == frozenset()
    assert set(session.as_value()) == {"subject", "client_id", "issuer", "jti", "token_expires", "claim_roles", "csrf", "started", "seen"}
    # A cookie of the earlier shape (the roles of the sign-in, no jti) is no session: sign in again.
    earlier = {"subject": "admin", "client_id": "mcp-acl-console", "issuer": "x", "roles": ["admin"], "csrf": "t", "started": 1.0, "seen": 1.0}
    assert ConsoleSession.from_value(earlier) is None


def test_a_sign_in_returns_only_to_a_console_page():
    assert _safe_next("/admin/grants?principal=role:x") == "/admin/grants?principal=role:x"
    for elsewhere in ("https://evil.example/admin", "//evil.example/admin", "/mcp", "/admin\\..\\x", None, ""):
        assert _safe_next(elsewhere) == "/admin/"


def test_the_console_callback_is_on_the_resource_urls_origin():
    assert callback_uri("https://mcp.example.com/mcp") == "https://mcp.example.com/admin/callback"


def test_an_upstream_url_is_shown_without_what_could_hold_a_credential():
    assert bare_url("https://user:pw@mcp.example.com:8443/mcp?key=s3cret#x") == "https://mcp.example.com:8443/mcp (query not shown)"


def test_run_demo_prints_the_console_url_and_the_demo_admins_sign_in():
    text = instructions("http://127.0.0.1:8000/mcp", {"alice": "A", "bob": "B"})
    assert "The admin console: http://127.0.0.1:8000/admin  (sign in as admin / admin-demo-password)" in text
