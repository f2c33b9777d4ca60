"""`mcp-acl init`, `user`, `role` and `client` (with sign-in passwords and OAuth clients): happy paths and bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mcp_acl.cli import app
from mcp_acl.oauth.clients import ClientRegistry
from mcp_acl.oauth.passwords import LoginOutcome, check_login
from mcp_acl.store import make_engine


def test_init_twice_is_harmless(cli, store_rows):
    before = store_rows(cli.url)
    assert "database ready" in cli.ok("init")
    assert store_rows(cli.url) == before


def test_command_on_uninitialised_database_says_run_init(cli_for, tmp_path):
    result = cli_for(f"sqlite:///{tmp_path / 'new.db'}")("grants")
    assert result.exit_code == 2
    assert "run `mcp-acl init`" in result.stderr
    assert not (tmp_path / "new.db").exists()


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
        (("role", "unassign", "alice", "analyst2"), "role 'analyst2' does not exist"),
        (("client", "add", "agent"), "client 'agent' already exists"),
        (("client", "remove", "nope"), "client 'nope' does not exist (see `mcp-acl client list`"),
        (("user", "passwd", "nobody"), "user 'nobody' does not exist (see `mcp-acl user list`"),
        (("role", "unassign", "nobody", "analyst"), "user 'nobody' does not exist (see `mcp-acl user list`"),
        (("role", "unassign", "alice", "ghost"), "role 'ghost' does not exist (see `mcp-acl role list`"),
        (("client", "secret", "ghost"), "client 'ghost' does not exist (see `mcp-acl client list`"),
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


# sign-in passwords and OAuth clients (the embedded issuer) ---------------------------


def _with_input(cli, text: str, *args: str):
    return CliRunner().invoke(app, [*args, "--database", cli.url], input=text, prog_name="mcp-acl")


@pytest.fixture
def store(cli):
    """An engine on the CLI's database, to look at what a command stored."""
    engine = make_engine(cli.url)
    yield engine
    engine.dispose()


def test_user_add_with_a_password_from_stdin_can_sign_in(cli, store):
    result = _with_input(cli, "correct horse\n", "user", "add", "alice", "--password-stdin")
    assert result.exit_code == 0, result.output
    assert check_login(store, "alice", "correct horse") is LoginOutcome.OK


def test_user_add_prompts_for_the_password_twice(cli, store):
    result = _with_input(cli, "correct horse\ncorrect horse\n", "user", "add", "alice", "--password")
    assert result.exit_code == 0, result.output
    assert "correct horse" not in result.output
    assert check_login(store, "alice", "correct horse") is LoginOutcome.OK


def test_user_add_with_a_short_password_is_refused_and_adds_nobody(cli, store_rows):
    before = store_rows(cli.url)
    result = _with_input(cli, "short\n", "user", "add", "alice", "--password-stdin")
    assert result.exit_code == 2 and result.stderr.startswith("error: the password is too short")
    assert store_rows(cli.url) == before


def test_user_passwd_replaces_the_password(cli, store):
    _with_input(cli, "correct horse\n", "user", "add", "alice", "--password-stdin")
    result = _with_input(cli, "battery staple\n", "user", "passwd", "alice", "--password-stdin")
    assert result.exit_code == 0, result.output
    assert check_login(store, "alice", "battery staple") is LoginOutcome.OK
    assert check_login(store, "alice", "correct horse") is LoginOutcome.REFUSED


def test_user_passwd_of_an_unknown_user_is_refused(cli):
    result = _with_input(cli, "battery staple\n", "user", "passwd", "nobody", "--password-stdin")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_confidential_client_gets_a_secret_printed_once(cli, store):
    shown = json.loads(cli.ok("client", "add", "reporter", "--confidential", "--restricted", "--json"))
    assert shown["client_id"] == "reporter" and shown["restricted"] is True and shown["client_secret"]
    client = ClientRegistry(store).get("reporter")
    assert client.check_client_secret(shown["client_secret"]) and client.check_grant_type("client_credentials")
    assert shown["client_secret"] not in cli.ok("client", "list")


def test_client_with_redirect_uris_is_a_public_oauth_client(cli, store):
    out = cli.ok("client", "add", "my-app", "--name", "My app", "--redirect-uri", "https://app.example.com/cb",
                 "--redirect-uri", "http://127.0.0.1:8400/cb")
    assert "secret" not in out
    client = ClientRegistry(store).get("my-app")
    assert client.is_public and client.name == "My app"
    assert client.redirect_uris == ("https://app.example.com/cb", "http://127.0.0.1:8400/cb")


def test_client_secret_replaces_the_secret(cli, store):
    old = json.loads(cli.ok("client", "add", "reporter", "--confidential", "--json"))["client_secret"]
    new = cli.ok("client", "secret", "reporter").split(": ")[-1].strip()
    client = ClientRegistry(store).get("reporter")
    assert client.check_client_secret(new) and not client.check_client_secret(old)


@pytest.mark.parametrize("args, says", [
    (("client", "add", "web", "--redirect-uri", "http://app.example.com/cb"), "not loopback"),
    (("client", "add", "web", "--redirect-uri", "javascript:alert(1)"), "not allowed"),
    (("client", "secret", "nobody"), "client 'nobody' does not exist (see `mcp-acl client list`"),
    (("client", "secret", "public"), "client 'public' is not a confidential OAuth client"),
])
def test_bad_oauth_client_input_exits_2_and_changes_nothing(cli, args, says):
    cli.ok("client", "add", "public")
    assert says in cli.rejects(*args)


def test_unassigning_a_role_the_user_lacks_says_so(cli):
    cli.ok("role", "add", "analyst")
    cli.ok("user", "add", "alice")
    assert "user 'alice' does not have role 'analyst'" in cli.rejects("role", "unassign", "alice", "analyst")


def test_names_that_look_like_rich_markup_are_printed_as_they_are(cli):
    # "[/x]" made Rich raise MarkupError after the user was added; "[red]bob" printed as "bob".
    assert "added role [/b]" in cli.ok("role", "add", "[/b]")
    assert "added user [/x]" in cli.ok("user", "add", "[/x]")
    assert "added user [red]bob with roles [/b]" in cli.ok("user", "add", "[red]bob", "--role", "[/b]")
    assert "removed user [red]bob" in cli.ok("user", "remove", "[red]bob")


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("a$(id)", "add it with `mcp-acl user add 'a$(id)'`)"),  # a valid name, quoted for the shell
        ("o'brien", """add it with `mcp-acl user add 'o'"'"'brien'`)"""),
        ("x y", "(see `mcp-acl user list`)"),  # no name `add` would take: nothing to paste
    ],
)
def test_unknown_name_hint_is_safe_to_paste(cli, name, hint):
    says = cli.rejects("user", "remove", name)
    assert says.rstrip().endswith(hint)
