"""`mcp-acl token --only/--when` mints a narrowed token; `mcp-acl check --token` decides as its caller."""

from __future__ import annotations

import json

import pytest

from mcp_acl.policy import Effect
from mcp_acl.policy.narrowing import NARROWING_TYPE
from mcp_acl.store import PolicyAdmin
from mcp_acl.store.token_ledger import revoke_party
from tests.cli.test_tokens_cli import verify

Q3 = 'args.path.startsWith("reports/q3")'


@pytest.fixture
def cli(engine, cli_for):
    """Alice may read and list files under reports/ and write nowhere."""
    admin = PolicyAdmin(engine)
    admin.add_user("alice")
    admin.add_grant("user:alice", "tool:files.read", Effect.ALLOW, 'args.path.startsWith("reports/")')
    admin.add_grant("user:alice", "tool:files.list", Effect.ALLOW)
    return cli_for(engine.url.render_as_string(hide_password=False))


def _check(cli, token: str, target: str, args: dict | None = None):
    extra = ["--args", json.dumps(args)] if args is not None else []
    return cli("check", "--token", token, target, *extra, "--json")


async def test_only_and_when_mint_a_token_carrying_the_narrowing(engine, cli):
    token = cli.ok("token", "--user", "alice", "--only", "tool:files.read", "--when", Q3).strip()
    verified = await verify(engine, cli.url, token)
    assert verified.claims["authorization_details"] == [
        {"type": NARROWING_TYPE, "targets": ["tool:files.read"], "condition": Q3}
    ]


def test_check_token_intersects_the_narrowing_with_the_users_grants(cli):
    token = cli.ok("token", "--user", "alice", "--only", "tool:files.read", "--when", Q3).strip()
    inside = _check(cli, token, "tool:files.read", {"path": "reports/q3/sales.md"})
    assert inside.exit_code == 0, inside.output
    assert json.loads(inside.stdout)["narrowing"][0]["targets"] == ["tool:files.read"]
    outside = _check(cli, token, "tool:files.read", {"path": "reports/q4.md"})
    assert outside.exit_code == 1 and "narrowed" in json.loads(outside.stdout)["reason"]
    # The user may list files, the narrowed token may not.
    assert cli("check", "user:alice", "tool:files.list").exit_code == 0
    listed = _check(cli, token, "tool:files.list")
    assert listed.exit_code == 1 and "outside what this token was narrowed to" in json.loads(listed.stdout)["reason"]


def test_a_narrowing_wider_than_the_user_gains_nothing(cli):
    token = cli.ok("token", "--user", "alice", "--only", "tool:*").strip()
    assert _check(cli, token, "tool:files.read", {"path": "reports/a.md"}).exit_code == 0
    assert _check(cli, token, "tool:files.read", {"path": "hr/salaries.csv"}).exit_code == 1
    assert _check(cli, token, "tool:files.write", {"path": "reports/a.md"}).exit_code == 1


def test_check_token_says_whom_it_decided_as(cli):
    token = cli.ok("token", "--user", "alice", "--only", "tool:files.read").strip()
    shown = cli("check", "--token", token, "tool:files.read", "--args", '{"path": "reports/a.md"}')
    assert shown.exit_code == 0
    assert "user alice through the client mcp-acl-cli, narrowed to tool:files.read" in shown.stdout


def test_a_revoked_narrowed_token_is_refused_by_check(engine, cli):
    token = cli.ok("token", "--user", "alice", "--only", "tool:files.read").strip()
    with engine.begin() as conn:
        assert revoke_party(conn, user="alice") == 1
    assert "revoked" in cli.rejects("check", "--token", token, "tool:files.read")


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--when", "true"], "give the targets it applies to with --only"),
        (["--only", "files.read"], "needs a kind"),
        (["--only", "tool:files.read", "--when", "args.path.startswith(\"x\")"], "did you mean startsWith"),
        (["--only", "tool:files.read", "--when", "secret"], "unknown variable"),
        (["--only", "tool:files.read", "--when", " "], "--when is empty"),
    ],
)
def test_bad_narrowings_are_refused_in_one_line(cli, args, problem):
    assert problem in cli.rejects("token", "--user", "alice", *args)


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--token", "not-a-token", "tool:files.read"], "the gateway would refuse this token"),
        (["--token", "{token}", "user:alice", "tool:files.read"], "give only the target"),
        (["--token", "{token}", "tool:files.read", "--client", "x"], "leave out --client"),
        (["--token", "{token}", "files.read"], "needs a kind"),
        (["tool:files.read"], "name a principal and a target"),
    ],
)
def test_bad_check_token_questions_are_refused_in_one_line(cli, args, problem):
    token = cli.ok("token", "--user", "alice").strip()
    assert problem in cli.rejects("check", *[a.replace("{token}", token) for a in args])


def test_catalogue_token_lists_only_the_narrowing(engine, cli):
    if engine.dialect.name != "sqlite":
        pytest.skip("catalogue leaves its engine to the process's end: run in-process on SQLite, as tests/cli/test_serve.py does")
    token = cli.ok("token", "--user", "alice", "--only", "tool:files.read", "--when", Q3).strip()
    shown = json.loads(cli.ok("catalogue", "--token", token, "--json"))
    assert [tool["name"] for tool in shown["tools"]] == ["files.read"]
    assert "Your token is narrowed to tool:files.read" in shown["access_policy_prompt"]
    whole = json.loads(cli.ok("catalogue", "--user", "alice", "--json"))
    assert {tool["name"] for tool in whole["tools"]} == {"files.read", "files.list"}
    assert "--user and --client" in cli.rejects("catalogue", "--token", token, "--user", "alice")
