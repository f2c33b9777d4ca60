"""`mcp-acl init`, `user`, `role` and `client`: happy paths and bad input."""

from __future__ import annotations

import json

import pytest


def test_init_twice_is_harmless(cli, store_rows):
    before = store_rows(cli.url)
    assert "database ready" in cli.ok("init")
    assert store_rows(cli.url) == before


def test_command_on_uninitialised_database_says_run_init(cli_for, tmp_path):
    result = cli_for(f"sqlite:///{tmp_path / 'new.db'}")("grants")
    assert result.exit_code == 2
    assert "not initialised: run `mcp-acl init` first" in result.stderr


def test_user_add_with_roles_is_listed(cli):
    cli.ok("role", "add", "analyst")
    cli.ok("role", "add", "support")
    assert "added user alice with roles analyst, support" in cli.ok("user", "add", "alice", "--role", "analyst", "--role", "support")
    users = json.loads(cli.ok("user", "list", "--json"))
    assert users == [{"name": "alice", "roles": ["analyst", "support"], "disabled": False}]
    table = cli.ok("user", "list")
    assert "alice" in table and "analyst, support" in table


def test_user_remove_takes_its_grants(cli):
    cli.ok("user", "add", "alice")
    cli.ok("grant", "user:alice", "tool:x")
    assert "removed user alice and its 1 grant" in cli.ok("user", "remove", "alice")
    assert json.loads(cli.ok("grants", "--json")) == []
    assert json.loads(cli.ok("user", "list", "--json")) == []


def test_role_list_counts_members(cli):
    cli.ok("role", "add", "analyst")
    cli.ok("user", "add", "alice", "--role", "analyst")
    assert json.loads(cli.ok("role", "list", "--json")) == [{"name": "analyst", "members": 1}]
    assert "analyst" in cli.ok("role", "list")


def test_role_assign_and_unassign(cli):
    cli.ok("role", "add", "analyst")
    cli.ok("user", "add", "alice")
    cli.ok("role", "assign", "alice", "analyst")
    assert json.loads(cli.ok("user", "list", "--json"))[0]["roles"] == ["analyst"]
    cli.ok("role", "unassign", "alice", "analyst")
    assert json.loads(cli.ok("user", "list", "--json"))[0]["roles"] == []


def test_role_remove_takes_memberships_and_grants(cli):
    cli.ok("role", "add", "analyst")
    cli.ok("user", "add", "alice", "--role", "analyst")
    cli.ok("grant", "role:analyst", "tool:x")
    assert "removed role analyst and its 1 grant" in cli.ok("role", "remove", "analyst")
    assert json.loads(cli.ok("user", "list", "--json"))[0]["roles"] == []
    assert json.loads(cli.ok("grants", "--json")) == []


def test_client_add_restricted_is_listed(cli):
    assert "added restricted client agent" in cli.ok("client", "add", "agent", "--restricted")
    cli.ok("client", "add", "app")
    assert json.loads(cli.ok("client", "list", "--json")) == [
        {"id": "agent", "name": None, "restricted": True},
        {"id": "app", "name": None, "restricted": False},
    ]
    assert "agent" in cli.ok("client", "list")


def test_client_remove_takes_its_grants(cli):
    cli.ok("client", "add", "agent")
    cli.ok("grant", "client:agent", "tool:x")
    assert "removed client agent and its 1 grant" in cli.ok("client", "remove", "agent")
    assert json.loads(cli.ok("client", "list", "--json")) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("user", "add", "alice"), "user 'alice' already exists"),
        (("user", "add", "bob", "--role", "nope"), "role 'nope' does not exist"),
        (("user", "add", "bad name"), "white space"),
        (("user", "remove", "nobody"), "user 'nobody' does not exist"),
        (("role", "add", "analyst"), "role 'analyst' already exists"),
        (("role", "add", "ana*"), "may not contain * or ?"),
        (("role", "remove", "nope"), "role 'nope' does not exist"),
        (("role", "assign", "alice", "analyst"), "user 'alice' already has role 'analyst'"),
        (("role", "assign", "nobody", "analyst"), "user 'nobody' does not exist"),
        (("role", "assign", "alice", "nope"), "role 'nope' does not exist"),
        (("role", "unassign", "alice", "nope"), "user 'alice' does not have role 'nope'"),
        (("client", "add", "agent"), "client 'agent' already exists"),
        (("client", "remove", "nope"), "client 'nope' does not exist"),
    ],
)
def test_bad_admin_input_exits_2_and_changes_nothing(cli, args, says):
    cli.ok("role", "add", "analyst")
    cli.ok("user", "add", "alice", "--role", "analyst")
    cli.ok("client", "add", "agent")
    assert says in cli.rejects(*args)


def test_subprocess_user_add_then_list(database_url, run_process):
    def run(*args: str):
        return run_process(database_url, *args)

    assert run("init").returncode == 0
    assert run("user", "add", "alice").returncode == 0
    duplicate = run("user", "add", "alice")
    assert duplicate.returncode == 2
    assert duplicate.stderr.strip() == "error: user 'alice' already exists"
    listed = run("user", "list", "--json")
    assert json.loads(listed.stdout) == [{"name": "alice", "roles": [], "disabled": False}]
