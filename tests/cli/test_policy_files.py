"""`mcp-acl policy export|import|test`: the policy as YAML, all or nothing."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from mcp_acl.store import PolicyAdmin, make_engine

# Questions whose answers must survive an export and an import.
QUESTIONS = [
    ("user:alice", "tool:files.read", {"path": "reports/q3.md"}, None),
    ("user:alice", "tool:files.read", {"path": "secret/plan.md"}, None),
    ("user:alice", "tool:files.read", {"path": "reports/q3.md"}, "agent"),
    ("user:alice", "tool:files.delete", {}, None),
    ("user:alice", "resource:file:///reports/q3.md", {}, None),
    ("user:bob", "tool:files.read", {"path": "reports/q3.md"}, None),
    ("user:bob", "prompt:daily", {}, None),
    ("user:mallory", "tool:files.read", {"path": "reports/q3.md"}, None),
    ("client:agent", "tool:files.read", {}, None),
    ("client:agent", "tool:files.write", {}, None),
    ("role:analyst", "tool:files.list", {}, None),
    ("role:support", "prompt:daily", {}, None),
]


def _build_policy(cli) -> None:
    """A policy that uses every feature the file format carries."""
    cli.ok("role", "add", "analyst")
    cli.ok("role", "add", "support")
    cli.ok("user", "add", "alice", "--role", "analyst", "--role", "support")
    cli.ok("user", "add", "bob", "--role", "support")
    cli.ok("user", "add", "mallory", "--role", "analyst")
    cli.ok("client", "add", "agent", "--restricted")
    cli.ok("client", "add", "app")
    # A revoked grant leaves a gap, so ids differ after the import.
    cli.ok("revoke", cli.ok("grant", "user:bob", "tool:gone").strip())
    cli.ok("grant", "role:analyst", "tool:files.*", "--when", 'args.path.startsWith("reports/")', "--note", "analysts read reports")
    cli.ok("grant", "user:alice", "tool:files.delete", "--deny", "--note", "never delete")
    cli.ok("grant", "role:analyst", "resource:file:///reports/*", "--expires", "30d")
    cli.ok("grant", "role:support", "prompt:daily", "--note", "it's: a \"quoted\" note")
    cli.ok("grant", "client:agent", "tool:files.list")
    cli.ok("grant", "client:agent", "tool:files.write", "--deny")
    engine = make_engine(cli.url)
    PolicyAdmin(engine).set_user_disabled("mallory", True)
    engine.dispose()


def _answers(cli) -> list[tuple]:
    """Each question's answer, with grant ids replaced by the grant they name."""
    grants = {g["id"]: (g["principal"], g["effect"], g["target"], g["when"]) for g in json.loads(cli.ok("grants", "--json"))}
    found = []
    for principal, target, args, client in QUESTIONS:
        extra = ("--client", client) if client else ()
        answer = json.loads(cli("check", principal, target, "--args", json.dumps(args), "--json", *extra).stdout)
        found.append((answer["allowed"], re.sub(r"#\d+", "#N", answer["reason"]), grants.get(answer["grant"])))
    return found


def _body(yaml_text: str) -> str:
    # The header names the revision, which differs between databases.
    return yaml_text.split("\n", 1)[1]


def test_export_then_import_gives_the_same_decisions(cli_for, cli, tmp_path):
    source = cli_for(f"sqlite:///{tmp_path / 'source.db'}")
    source.ok("init")
    _build_policy(source)
    exported = source.ok("policy", "export")
    path = tmp_path / "policy.yaml"
    path.write_text(exported)
    assert "imported 3 users, 2 roles, 2 clients, 6 grants" in cli.ok("policy", "import", str(path))
    assert _answers(cli) == _answers(source)
    assert _body(cli.ok("policy", "export")) == _body(exported)
    allowed = [a[0] for a in _answers(cli)]
    assert True in allowed and False in allowed


def test_export_writes_the_documented_format(cli, tmp_path):
    _build_policy(cli)
    path = tmp_path / "out.yaml"
    assert "exported 3 users, 2 roles, 2 clients, 6 grants" in cli.ok("policy", "export", str(path))
    data = yaml.safe_load(path.read_text())
    assert data["version"] == 1
    assert data["roles"] == ["analyst", "support"]
    assert {"name": "mallory", "roles": ["analyst"], "disabled": True} in data["users"]
    assert {"id": "agent", "restricted": True} in data["clients"]
    first = data["grants"][0]
    assert first == {"principal": "role:analyst", "effect": "allow", "target": "tool:files.*",
                     "when": 'args.path.startsWith("reports/")', "note": "analysts read reports"}
    assert data["grants"][2]["expires"].endswith("+00:00")


def test_import_of_grants_only_uses_principals_in_the_database(cli, tmp_path):
    cli.ok("user", "add", "bob")
    path = tmp_path / "grants.yaml"
    path.write_text("grants:\n  - {principal: user:bob, target: tool:x}\n")
    cli.ok("policy", "import", str(path))
    assert cli("check", "user:bob", "tool:x").exit_code == 0


GOOD = """\
roles: [analyst]
users:
  - {name: alice, roles: [analyst]}
clients:
  - {id: agent, restricted: true}
grants:
  - {principal: role:analyst, target: "tool:files.*"}
  - {principal: user:alice, target: tool:a}
  - {principal: client:agent, target: tool:b, effect: deny}
"""


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (GOOD + "  - {principal: user:alice, target: tool:c, when: 'args.('}\n",
         "grants[3].when: condition 'args.(' does not compile: at line 1, column 6"),
        (GOOD + "  - {principal: user:carol, target: tool:c}\n", "grants[3]: user 'carol' does not exist"),
        (GOOD + "  - {principal: group:x, target: tool:c}\n", "grants[3].principal: unknown principal kind 'group'"),
        (GOOD + "  - {principal: user:alice, target: tools:c}\n", "grants[3].target: unknown target kind 'tools'"),
        (GOOD + "  - {principal: user:alice, target: tool:c, effect: maybe}\n", "grants[3].effect: expected allow or deny"),
        (GOOD + "  - {principal: user:alice, target: tool:c, expires: later}\n", "grants[3].expires: 'later' is not a time"),
        (GOOD + "  - {principal: user:alice, target: tool:c, expires: [1]}\n", "grants[3].expires: expected an ISO 8601 time"),
        (GOOD + "  - {principal: user:alice, target: tool:c, until: x}\n", "grants[3]: unknown key 'until'"),
        (GOOD + "  - {principal: user:alice}\n", "grants[3].target: missing (required)"),
        (GOOD + "  - {principal: user:alice, target: 7}\n", "grants[3].target: expected a non-empty string, got the number 7"),
        (GOOD + "  - {principal: user:alice, target: tool:c, note: ''}\n", "grants[3].note: expected a non-empty string"),
        (GOOD + "  - tool:c\n", "grants[3]: expected a mapping"),
        (GOOD.replace("users:\n", "users:\n  - {name: alice}\n"), "users[1]: user 'alice' already exists"),
        (GOOD.replace("[analyst]}", "[analysts]}"), "users[0]: role 'analysts' does not exist"),
        (GOOD.replace("restricted: true", "restricted: 'yes'"), "clients[0].restricted: expected true or false"),
        (GOOD.replace("roles: [analyst]", "roles: [analyst, analyst]"), "roles[1]: role 'analyst' already exists"),
        (GOOD.replace("roles: [analyst]", "roles: analyst"), "roles: expected a list"),
        (GOOD + "policies: []\n", "unknown key 'policies'"),
        (GOOD + "version: 2\n", "version: this mcp-acl reads format version 1, not 2"),
        (GOOD + "roles: [x]\n", "not valid YAML at line 10, column 1: duplicate key 'roles'"),
        (GOOD + "  - {principal: user:alice, target: tool:c\n", "not valid YAML at line"),
        ("", "the file is empty"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_import_file_changes_nothing(cli, tmp_path, text, says):
    cli.ok("role", "add", "existing")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert says in cli.rejects("policy", "import", str(path))


def test_import_rejects_names_already_in_the_database(cli, tmp_path):
    cli.ok("client", "add", "agent")
    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    assert "clients[0]: client 'agent' already exists" in cli.rejects("policy", "import", str(path))


def test_import_of_missing_file_exits_2(cli, tmp_path):
    assert "cannot read" in cli.rejects("policy", "import", str(tmp_path / "nope.yaml"))


# policy test ------------------------------------------------------------------

CASES = """\
cases:
  - name: analysts read reports
    principal: user:alice
    target: tool:files.read
    args: {path: reports/q3.md}
    expect: allow
  - principal: user:alice
    target: tool:files.read
    args: {path: reports/q3.md}
    client: agent
    expect: deny
  - principal: role:analyst
    target: tool:files.read
    args: {path: secret/x}
    expect: deny
"""


def _test_file(tmp_path, text: str):
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    return str(path)


def test_policy_test_passes_and_reports_each_case(cli, tmp_path):
    _build_policy(cli)
    result = cli("policy", "test", _test_file(tmp_path, CASES))
    assert result.exit_code == 0, result.output
    assert "pass  analysts read reports: expected allow" in result.stdout
    assert "pass  role:analyst tool:files.read: expected deny" in result.stdout
    assert "3 passed, 0 failed" in result.stdout


def test_policy_test_failing_case_exits_1(cli, tmp_path):
    _build_policy(cli)
    result = cli("policy", "test", _test_file(tmp_path, CASES.replace("expect: deny\n", "expect: allow\n", 1)))
    assert result.exit_code == 1
    assert "FAIL  user:alice tool:files.read: expected allow, got deny" in result.stdout
    assert "2 passed, 1 failed" in result.stdout


def test_policy_test_json_lists_every_case(cli, tmp_path):
    _build_policy(cli)
    result = cli("policy", "test", _test_file(tmp_path, CASES), "--json")
    outcomes = json.loads(result.stdout)
    assert [o["passed"] for o in outcomes] == [True, True, True]
    assert set(outcomes[0]) == {"case", "expect", "passed", "allowed", "reason", "grant", "revision"}


def test_policy_test_accepts_a_bare_list(cli, tmp_path):
    cli.ok("user", "add", "bob")
    assert cli("policy", "test", _test_file(tmp_path, "- {principal: user:bob, target: tool:x, expect: deny}\n")).exit_code == 0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("cases:\n  - {principal: user:carol, target: tool:x, expect: deny}\n", "cases[0]: user 'carol' does not exist"),
        ("cases:\n  - {principal: user:bob, target: tool:x, expect: maybe}\n", "cases[0].expect: expected allow or deny"),
        ("cases:\n  - {principal: user:bob, target: 'tool:*', expect: deny}\n", "cases[0]: target 'tool:*' names a pattern"),
        ("cases:\n  - {principal: user:bob, target: tool:x, args: [1], expect: deny}\n", "cases[0].args: expected a mapping"),
        ("cases:\n  - {principal: user:bob, target: tool:x, client: ghost, expect: deny}\n", "cases[0]: client 'ghost' does not exist"),
        ("cases:\n  - {principal: user:bob, target: tool:x, expected: deny}\n", "cases[0]: unknown key 'expected'"),
        ("cases: []\n", "no cases"),
        ("tests: []\n", "unknown key 'tests'"),
    ],
)
def test_bad_policy_test_file_exits_2(cli, tmp_path, text, says):
    cli.ok("user", "add", "bob")
    result = cli("policy", "test", _test_file(tmp_path, text))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert says in result.stderr


def test_subprocess_export_and_import_round_trip(database_url, run_process, tmp_path):
    run = run_process
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    for url in (database_url, fresh):
        assert run(url, "init").returncode == 0
    run(database_url, "user", "add", "bob")
    run(database_url, "grant", "user:bob", "tool:x", "--when", "args.n < 3")
    path = tmp_path / "p.yaml"
    assert run(database_url, "policy", "export", str(path)).returncode == 0
    assert run(fresh, "policy", "import", str(path)).returncode == 0
    assert run(fresh, "check", "user:bob", "tool:x", "--args", '{"n": 1}').returncode == 0
    assert run(fresh, "check", "user:bob", "tool:x", "--args", '{"n": 5}').returncode == 1
    again = run(fresh, "policy", "import", str(path))
    assert again.returncode == 2
    assert again.stderr.strip() == "error: users[0]: user 'bob' already exists"
