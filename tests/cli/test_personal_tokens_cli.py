"""`mcp-acl token create | list | revoke NAME`: one line and exit 2 for bad input, nothing written; the secret shown once."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from mcp_acl.auth import build_verifier
from mcp_acl.auth.verifier import TokenRejected
from mcp_acl.cli import app
from mcp_acl.config import Settings
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from mcp_acl.store.personal_tokens import DEFAULT_CLIENT, PREFIX, digest

runner = CliRunner()


@pytest.fixture
def url(engine) -> str:
    admin = PolicyAdmin(engine)
    admin.add_user("alice")
    admin.add_user("carol")
    admin.set_user_disabled("carol", True)
    admin.add_client("ollama-agent", restricted=True)
    return engine.url.render_as_string(hide_password=False)


def cli(url: str, *args: str):
    return runner.invoke(app, ["token", *args, "--database", url])


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.personal_tokens)).scalar()


async def test_create_prints_the_token_once_stores_its_digest_and_it_verifies(engine, url):
    result = cli(url, "create", "--user", "alice", "--name", "bridge", "--expires", "30d")
    assert result.exit_code == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith(PREFIX)
    assert "personal token bridge for alice via mcp-acl-token" in result.stderr and token not in result.stderr
    with engine.connect() as conn:
        [row] = conn.execute(select(t.personal_tokens))
    assert row.token_hash == digest(token) and token not in str(tuple(row))
    verified = await build_verifier(Settings(database_url=url), engine).verify(token)
    assert (verified.subject, verified.client_id, verified.issuer) == ("alice", DEFAULT_CLIENT, "token:bridge")
    assert verified.scopes == frozenset({"mcp"})


@pytest.mark.parametrize(
    "args, message",
    [
        (["--user", "alice", "--name", "bad name"], "not a token name"),
        (["--user", "alice", "--name", PREFIX + "x"], "not a token name"),
        (["--user", "alice", "--name", "b", "--expires", "0d"], "zero"),
        (["--user", "alice", "--name", "b", "--expires", "2001-01-01"], "in the past"),
        (["--user", "alice", "--name", "b", "--expires", "soon"], "not a time"),
        (["--user", "nobody", "--name", "b"], "nobody"),
        (["--user", "carol", "--name", "b"], "disabled"),
        (["--user", "alice", "--name", "b", "--client", "nope"], "nope"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(engine, url, args, message):
    result = cli(url, "create", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert count(engine) == 0


def test_a_live_name_cannot_be_taken_but_a_revoked_one_can(engine, url):
    first = cli(url, "create", "--user", "alice", "--name", "bridge").stdout.strip()
    again = cli(url, "create", "--user", "alice", "--name", "bridge")
    assert again.exit_code == 2 and "already named 'bridge'" in again.stderr
    assert cli(url, "revoke", "bridge").stdout.startswith("revoked personal token bridge")
    second = cli(url, "create", "--user", "alice", "--name", "bridge", "--expires", "never")
    assert second.exit_code == 0 and second.stdout.strip() != first
    [listed] = json.loads(cli(url, "list", "--json").stdout)
    assert (listed["state"], listed["expires"], listed["client"]) == ("live", None, DEFAULT_CLIENT)


def test_revoke_by_the_token_itself_never_echoes_it(url):
    token = cli(url, "create", "--user", "alice", "--name", "leaked", "--client", "ollama-agent").stdout.strip()
    result = cli(url, "revoke", token)
    assert result.exit_code == 0 and result.stdout.startswith("revoked personal token leaked (alice via ollama-agent)")
    assert token not in result.stdout + result.stderr
    unknown = cli(url, "revoke", PREFIX + "A" * 43)
    assert unknown.exit_code == 2 and "not known here" in unknown.stderr


def test_a_name_that_is_no_personal_token_is_revoked_as_a_jti(url):
    cli(url, "create", "--user", "alice", "--name", "bridge")
    result = cli(url, "revoke", "some-jti")
    assert result.exit_code == 0 and result.stdout.startswith("revoked token some-jti (not minted here")
    assert json.loads(cli(url, "list", "--json").stdout)[0]["state"] == "live"


async def test_list_filters_by_user_and_revoking_the_user_revokes_its_tokens(engine, url):
    PolicyAdmin(engine).add_user("bob")
    cli(url, "create", "--user", "alice", "--name", "a1")
    token = cli(url, "create", "--user", "bob", "--name", "b1").stdout.strip()
    assert [r["name"] for r in json.loads(cli(url, "list", "--user", "bob", "--json").stdout)] == ["b1"]
    assert "revoked 1 live access token" in cli(url, "revoke", "--user", "bob").stdout
    states = {r["name"]: r["state"] for r in json.loads(cli(url, "list", "--json").stdout)}
    assert states == {"a1": "live", "b1": "revoked"}
    with pytest.raises(TokenRejected, match="revoked"):
        await build_verifier(Settings(database_url=url), engine).verify(token)
    text = cli(url, "list").stdout
    assert "a1" in text and "b1" in text and "revoked" in text


def test_a_name_that_is_also_another_tokens_jti_is_refused_as_ambiguous(url):
    assert cli(url, "revoke", "shared-id").exit_code == 0  # a jti on the ledger now
    cli(url, "create", "--user", "alice", "--name", "shared-id")
    result = cli(url, "revoke", "shared-id")
    assert result.exit_code == 2 and "both a personal token's name and another token's jti" in result.stderr
    assert json.loads(cli(url, "list", "--json").stdout)[0]["state"] == "live"


def test_check_token_verifies_a_personal_token_without_recording_a_use(engine, url):
    token = cli(url, "create", "--user", "alice", "--name", "bridge").stdout.strip()
    for _ in range(2):
        checked = runner.invoke(app, ["check", "--token", token, "tool:files.read", "--database", url], prog_name="mcp-acl")
        assert checked.exit_code in (0, 1), checked.output  # allowed or denied: the token itself was accepted
        assert "user alice through the client mcp-acl-token" in checked.stdout
    # An administrator's check is not a use: `last used` still says never.
    [listed] = json.loads(cli(url, "list", "--json").stdout)
    assert listed["last_used"] is None
