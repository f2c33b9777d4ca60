"""`mcp-acl token` and `mcp-acl keys`, through the CLI runner and one real subprocess."""

from __future__ import annotations

import getpass
import json
import re
import subprocess
import sys

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from mcp_acl.audit import AuditLog
from mcp_acl.auth import SigningKeys, build_verifier
from mcp_acl.auth.tokens import issued_token
from mcp_acl.cli import app
from mcp_acl.cli.tokens import DEFAULT_CLI_CLIENT, parse_duration
from mcp_acl.config import Settings
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from mcp_acl.store.token_ledger import is_revoked

runner = CliRunner()


@pytest.fixture
def url(engine) -> str:
    """The database URL of a store with users alice (enabled), carol (disabled) and client ollama-agent."""
    admin = PolicyAdmin(engine)
    admin.add_user("alice")
    admin.add_user("carol")
    admin.set_user_disabled("carol", True)
    admin.add_client("ollama-agent", restricted=True)
    return engine.url.render_as_string(hide_password=False)


def token_cli(url: str, *args: str, env: dict | None = None):
    return runner.invoke(app, ["token", "--database", url, *args], env=env)


async def verify(engine, url: str, token: str):
    return await build_verifier(Settings(database_url=url), engine).verify(token)


async def test_user_token_verifies_and_names_the_default_client(engine, url):
    result = token_cli(url, "--user", "alice")
    assert result.exit_code == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    verified = await verify(engine, url, token)
    assert (verified.subject, verified.client_id, verified.scopes) == ("alice", DEFAULT_CLI_CLIENT, frozenset({"mcp"}))


async def test_user_token_through_a_registered_client_with_scopes_and_ttl(engine, url):
    result = token_cli(url, "--user", "alice", "--client", "ollama-agent", "--scope", "mcp", "--scope", "files", "--ttl", "30m")
    verified = await verify(engine, url, result.stdout.strip())
    assert verified.client_id == "ollama-agent"
    assert verified.scopes == frozenset({"mcp", "files"})
    assert verified.claims["exp"] - verified.claims["iat"] == 1800


async def test_service_token_names_the_client_in_sub(engine, url):
    result = token_cli(url, "--client", "ollama-agent")
    verified = await verify(engine, url, result.stdout.strip())
    assert verified.claims["sub"] == "ollama-agent" and verified.client_id == "ollama-agent"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--user", "mallory"], "user 'mallory' does not exist (see `mcp-acl user list`"),
        (["--user", "carol"], "disabled"),
        (["--client", "nobody"], "client 'nobody' does not exist"),
        (["--user", "alice", "--client", "nobody"], "client 'nobody' does not exist"),
        ([], "--user NAME and/or --client ID"),
        (["--user", "alice", "--ttl", "2d"], "longer than the longest token lifetime"),
        (["--user", "alice", "--ttl", "soon"], "not a duration"),
        (["--user", "alice", "--scope", "two words"], "not a valid scope"),
    ],
)
def test_bad_requests_exit_2_and_print_no_token(url, args, says):
    result = token_cli(url, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert says in " ".join(result.stderr.split())


def test_token_is_refused_when_an_external_issuer_is_configured(url):
    result = token_cli(url, "--user", "alice", env={"MCP_ACL_ISSUER": "https://idp.example"})
    assert result.exit_code == 2 and result.stdout == ""
    assert "external issuer" in result.stderr


def test_keys_rotate_then_list_shows_the_new_active_and_the_old_published_key(engine, url):
    old = SigningKeys(engine).ensure_active()
    rotated = runner.invoke(app, ["keys", "rotate", "--keep-old-for", "2d", "--database", url])
    assert rotated.exit_code == 0, rotated.stderr
    listed = runner.invoke(app, ["keys", "list", "--json", "--database", url])
    states = {row["kid"]: row["state"] for row in json.loads(listed.stdout)}
    assert states[old] == "published"
    assert sorted(states.values()) == ["active", "published"]


def test_keys_rotate_refuses_to_drop_the_old_key_too_early(engine, url):
    SigningKeys(engine).ensure_active()
    result = runner.invoke(app, ["keys", "rotate", "--keep-old-for", "1h", "--database", url])
    assert result.exit_code == 2
    assert "longest token lifetime" in result.stderr
    assert [k.state for k in SigningKeys(engine).inventory()] == ["active"]


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("1d", 86400)])
def test_durations_take_a_unit(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


async def test_token_in_a_subprocess_prints_only_the_token(engine, url, subprocess_env):
    done = subprocess.run(
        [sys.executable, "-m", "mcp_acl", "token", "--user", "alice", "--database", url],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    [token] = done.stdout.splitlines()
    assert (await verify(engine, url, token)).subject == "alice"


# --- `mcp-acl token revoke` beside `mcp-acl token --user` (one group whose own options mint) ----------


def revoke_cli(url: str, *args: str, env: dict | None = None):
    return runner.invoke(app, ["token", "revoke", *args, "--database", url], env=env)


def test_minting_is_unchanged_and_the_minted_token_is_recorded_for_revocation(engine, url):
    token = token_cli(url, "--user", "alice").stdout.strip()
    jti = issued_token(token).jti
    result = revoke_cli(url, jti)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"revoked token {jti} (alice via {DEFAULT_CLI_CLIENT}, valid until ")
    with engine.connect() as conn:
        assert is_revoked(conn, jti)
    [row] = AuditLog(engine).tail(1)
    assert (row["kind"], row["action"], row["target"]) == ("revocation", "revoke", f"token:{jti}")
    assert row["subject"] == getpass.getuser()
    assert revoke_cli(url, jti).stdout.startswith(f"token {jti} was already revoked")


def test_minted_ids_never_read_as_options_and_one_that_does_is_revoked_after_a_double_dash(engine, url):
    jtis = {issued_token(token_cli(url, "--user", "alice").stdout.strip()).jti for _ in range(20)}
    # Hex only, by construction: no sample of ids could prove "never a leading -", the alphabet does.
    assert all(re.fullmatch(r"[0-9a-f]{32}", jti) for jti in jtis)
    # An external issuer's id may start with "-": it goes after `--`.
    result = runner.invoke(app, ["token", "revoke", "--database", url, "--", "-dash-jti"])
    assert result.exit_code == 0, result.stderr
    with engine.connect() as conn:
        assert is_revoked(conn, "-dash-jti")


def test_revoking_a_user_or_a_client_counts_their_live_tokens(engine, url):
    for args in (["--user", "alice"], ["--user", "alice", "--client", "ollama-agent"], ["--client", "ollama-agent"]):
        assert token_cli(url, *args).exit_code == 0
    assert revoke_cli(url, "--user", "alice").stdout.startswith("revoked 2 live access tokens and the sign-ins of user:alice")
    assert revoke_cli(url, "--client", "ollama-agent").stdout.startswith("revoked 1 live access token and the sign-ins of client:ollama-agent")
    # A disabled user's tokens can still be revoked (carol is disabled).
    assert revoke_cli(url, "--user", "carol").exit_code == 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "name one of: a JTI, --user NAME or --client ID"),
        (["some-jti", "--user", "alice"], "name one of"),
        (["--user", "alice", "--client", "ollama-agent"], "name one of"),
        (["--user", "mallory"], "user 'mallory' does not exist"),
        (["--client", "nobody"], "client 'nobody' does not exist"),
        (["bad\tjti"], "not a jti"),
    ],
)
def test_bad_revocations_exit_2_and_revoke_nothing(engine, url, args, says):
    result = revoke_cli(url, *args)
    assert result.exit_code == 2 and says in " ".join(result.stderr.split())
    with engine.connect() as conn:
        assert conn.execute(select(t.access_tokens)).first() is None


def test_minting_options_before_revoke_are_refused_not_ignored(url):
    result = runner.invoke(app, ["token", "--user", "alice", "revoke", "some-jti", "--database", url])
    assert result.exit_code == 2 and "put options after `revoke`" in result.stderr


def test_the_database_from_the_environment_does_not_count_as_an_option_before_revoke(url):
    result = runner.invoke(app, ["token", "revoke", "some-jti"], env={"MCP_ACL_DATABASE_URL": url})
    assert result.exit_code == 0, result.stderr
    assert "not minted here" in result.stdout


def test_token_help_shows_minting_and_the_revoke_command():
    result = runner.invoke(app, ["token", "--help"])
    assert result.exit_code == 0
    assert "--user" in result.stdout and "revoke" in result.stdout


async def test_both_forms_in_a_subprocess(engine, url, subprocess_env):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mcp_acl", "token", *args, "--database", url],
                              env=subprocess_env, capture_output=True, text=True, timeout=120)

    minted = run("--user", "alice")
    assert minted.returncode == 0, minted.stderr
    revoked = run("revoke", issued_token(minted.stdout.strip()).jti)
    assert revoked.returncode == 0 and revoked.stdout.startswith("revoked token "), revoked.stderr
