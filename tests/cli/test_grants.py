"""`mcp-acl grant`, `revoke`, `grants` and `check`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from mcp_acl.store import make_engine
from mcp_acl.store import tables as t

CHECK_KEYS = {"allowed", "reason", "grant", "revision"}


@pytest.fixture
def seeded(cli):
    """alice (analyst) and bob (no roles); agent is a restricted client, app is not."""
    cli.ok("role", "add", "analyst")
    cli.ok("user", "add", "alice", "--role", "analyst")
    cli.ok("user", "add", "bob")
    cli.ok("client", "add", "agent", "--restricted")
    cli.ok("client", "add", "app")
    return cli


def _grant(cli, *args: str) -> int:
    return int(cli.ok("grant", *args).strip())


def test_grant_prints_only_the_new_id(seeded):
    first = _grant(seeded, "role:analyst", "tool:files.*")
    assert _grant(seeded, "user:bob", "tool:x") == first + 1


def test_grant_stores_condition_note_effect_and_expiry(seeded):
    before = datetime.now(timezone.utc)
    gid = _grant(seeded, "role:analyst", "tool:files.*", "--deny", "--when", 'args.path.startsWith("secret/")',
                 "--note", "no secrets", "--expires", "2h")
    [g] = json.loads(seeded.ok("grants", "--json"))
    assert (g["id"], g["effect"], g["principal"], g["target"]) == (gid, "deny", "role:analyst", "tool:files.*")
    assert (g["when"], g["note"]) == ('args.path.startsWith("secret/")', "no secrets")
    expires = datetime.fromisoformat(g["expires"])
    assert before + timedelta(hours=2) <= expires <= datetime.now(timezone.utc) + timedelta(hours=2)


def test_grant_expiry_as_iso_time_without_offset_is_utc(seeded):
    _grant(seeded, "user:bob", "tool:x", "--expires", "2999-01-02T03:04")
    [g] = json.loads(seeded.ok("grants", "--json"))
    assert g["expires"] == "2999-01-02T03:04:00+00:00"


def test_grants_filters_by_principal_and_target(seeded):
    a = _grant(seeded, "role:analyst", "tool:files.*")
    b = _grant(seeded, "user:bob", "tool:files.read")
    _grant(seeded, "user:bob", "prompt:daily")
    assert [g["id"] for g in json.loads(seeded.ok("grants", "--target", "tool:files.read", "--json"))] == [a, b]
    assert [g["id"] for g in json.loads(seeded.ok("grants", "--principal", "role:analyst", "--json"))] == [a]
    assert [g["id"] for g in json.loads(seeded.ok("grants", "--principal", "user:bob", "--target", "tool:files.*", "--json"))] == [b]


def test_grants_table_shows_condition_and_note(seeded):
    _grant(seeded, "role:analyst", "tool:files.*", "--when", "args.tags[0] == 'q3'", "--note", "quarterly")
    table = seeded.ok("grants")
    assert "args.tags[0]" in table and "quarterly" in table and "role:analyst" in table


def test_revoke_removes_the_grant(seeded):
    gid = _grant(seeded, "user:bob", "tool:x")
    assert f"revoked #{gid} allow user:bob tool:x" in seeded.ok("revoke", str(gid))
    assert json.loads(seeded.ok("grants", "--json")) == []


def test_revoke_says_what_it_removed_on_one_line_however_long(seeded):
    condition = 'args.path.startsWith("reports/quarterly/") && args.path.endsWith(".md") && args.size < 100000'
    gid = _grant(seeded, "role:analyst", "tool:files.read", "--when", condition)
    # One line even past 80 columns, so a script or a log can grep for it whole.
    assert seeded.ok("revoke", str(gid)).splitlines() == [f"revoked #{gid} allow role:analyst tool:files.read when {condition}"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("grant", "admin:bob", "tool:x"), "unknown principal kind 'admin'"),
        (("grant", "bob", "tool:x"), "needs a kind"),
        (("grant", "user:carol", "tool:x"), "user 'carol' does not exist"),
        (("grant", "role:nope", "tool:x"), "role 'nope' does not exist"),
        (("grant", "client:nope", "tool:x"), "client 'nope' does not exist"),
        (("grant", "user:bob", "x"), "target 'x' needs a kind"),
        (("grant", "user:bob", "file:x"), "unknown target kind 'file'"),
        (("grant", "user:bob", "tool:"), "has an empty name"),
        (("grant", "user:bob", "tool:x", "--when", "args.("), "does not compile: at line 1, column 6"),
        (("grant", "user:bob", "tool:x", "--when", "request.ip == '1'"), "unknown variable(s) request"),
        (("grant", "user:bob", "tool:x", "--when", 'args.path.startswith("x")'), "unknown method startswith (did you mean startsWith?)"),
        (("grant", "user:bob", "tool:x", "--deny", "--when", "args.path + 1"), "condition 'args.path + 1': gives int, not a boolean"),
        (("grant", "user:bob", "tool:x", "--when", ""), "--when is empty"),
        (("grant", "user:bob", "tool:x", "--when", "  "), "--when is empty"),
        (("revoke", "0"), "grant #0 does not exist"),
        (("revoke", "99999999999"), "does not exist"),
        (("grant", "user:bob", "tool:x", "--expires", "2001-01-01"), "--expires: the expiry 2001-01-01T00:00:00+00:00 is in the past"),
        (("grant", "user:bob", "tool:x", "--expires", "soon"), "--expires: 'soon' is not a time"),
        (("revoke", "999"), "grant #999 does not exist"),
        (("grants", "--principal", "group:x"), "unknown principal kind 'group'"),
        (("grants", "--principal", "user:carol"), "user 'carol' does not exist (see `mcp-acl user list`"),
        (("grants", "--principal", "role:ghost"), "role 'ghost' does not exist"),
        (("grants", "--principal", "client:ghost"), "client 'ghost' does not exist"),
        (("grants", "--target", "tool"), "needs a kind"),
    ],
)
def test_bad_grant_input_exits_2_and_changes_nothing(seeded, args, says):
    _grant(seeded, "user:bob", "tool:y")
    assert says in seeded.rejects(*args)


def test_error_quoting_brackets_is_printed_whole(seeded):
    # Rich would read `[idx]` as markup and drop it from the message.
    assert "args.tags[idx]" in seeded.rejects("grant", "user:bob", "tool:x", "--when", "args.tags[idx] == 1")


def test_grants_list_marks_a_stored_condition_that_fails_the_check(seeded):
    # A row written before conditions were type-checked (here, straight into the table).
    engine = make_engine(seeded.url)
    with engine.begin() as conn:
        conn.execute(insert(t.grants).values(principal="user:bob", effect="deny", target="tool:x", condition="args.path + 1",
                                          created_at=datetime.now(timezone.utc)))
    engine.dispose()
    [g] = json.loads(seeded.ok("grants", "--json"))
    assert g["problem"] == "condition 'args.path + 1': gives int, not a boolean"
    assert "BROKEN: condition 'args.path + 1': gives int" in " ".join(seeded.ok("grants").split())


def test_grants_list_has_no_problem_for_a_good_condition(seeded):
    _grant(seeded, "user:bob", "tool:x", "--when", "args.n < 3")
    [g] = json.loads(seeded.ok("grants", "--json"))
    assert g["problem"] is None
    assert "BROKEN" not in seeded.ok("grants")


# check ------------------------------------------------------------------------


def test_check_allowed_exits_0_and_names_the_grant(seeded):
    gid = _grant(seeded, "role:analyst", "tool:files.*", "--when", 'args.path.startsWith("reports/")', "--note", "reports only")
    result = seeded("check", "user:alice", "tool:files.read", "--args", '{"path": "reports/q3.md"}')
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"allowed  tool:files.read is allowed to user alice by grant #{gid}")
    assert "(reports only)" in result.stdout


def test_check_denied_exits_1_with_the_reason(seeded):
    _grant(seeded, "role:analyst", "tool:files.*", "--when", 'args.path.startsWith("reports/")')
    result = seeded("check", "user:alice", "tool:files.read", "--args", '{"path": "secret/x"}')
    assert result.exit_code == 1
    assert "does not hold for these arguments" in result.stdout


def test_check_json_has_exactly_the_documented_keys(seeded):
    gid = _grant(seeded, "user:bob", "tool:x")
    allowed = seeded("check", "user:bob", "tool:x", "--json")
    denied = seeded("check", "user:bob", "tool:y", "--json")
    assert (allowed.exit_code, denied.exit_code) == (0, 1)
    a, d = json.loads(allowed.stdout), json.loads(denied.stdout)
    assert set(a) == set(d) == CHECK_KEYS
    assert (a["allowed"], a["grant"]) == (True, gid)
    assert (d["allowed"], d["grant"], d["reason"]) == (False, None, "no grant allows user bob to use tool:y")
    assert a["revision"] == d["revision"] > 0


def test_check_deny_overrides_allow(seeded):
    _grant(seeded, "role:analyst", "tool:files.*")
    deny = _grant(seeded, "user:alice", "tool:files.delete", "--deny")
    result = seeded("check", "user:alice", "tool:files.delete", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["grant"] == deny


def test_check_through_restricted_client_needs_the_client_grant(seeded):
    _grant(seeded, "user:bob", "tool:x")
    assert seeded("check", "user:bob", "tool:x", "--client", "app").exit_code == 0
    capped = seeded("check", "user:bob", "tool:x", "--client", "agent")
    assert capped.exit_code == 1
    assert "restricted client agent" in capped.stdout
    _grant(seeded, "client:agent", "tool:*")
    assert seeded("check", "user:bob", "tool:x", "--client", "agent").exit_code == 0


def test_check_client_principal_is_a_service_token(seeded):
    _grant(seeded, "user:bob", "tool:x")
    assert seeded("check", "client:app", "tool:x").exit_code == 1
    _grant(seeded, "client:app", "tool:x")
    result = seeded("check", "client:app", "tool:x")
    assert result.exit_code == 0
    assert "allowed to client app" in result.stdout


def test_check_role_decides_as_a_synthetic_member_and_says_so(seeded):
    _grant(seeded, "role:analyst", "tool:files.*")
    _grant(seeded, "user:alice", "tool:extra")
    result = seeded("check", "role:analyst", "tool:files.read")
    assert result.exit_code == 0
    assert "a synthetic user holding only role analyst" in result.stdout
    # alice's own grant does not leak into the role's answer.
    assert seeded("check", "role:analyst", "tool:extra").exit_code == 1


def test_check_sees_revocation_immediately(seeded):
    gid = _grant(seeded, "user:bob", "tool:x")
    assert seeded("check", "user:bob", "tool:x").exit_code == 0
    seeded.ok("revoke", str(gid))
    assert seeded("check", "user:bob", "tool:x").exit_code == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("check", "user:bob", "tool:x", "--args", "[1, 2]"), "--args must be a JSON object"),
        (("check", "user:bob", "tool:x", "--args", '"path"'), "--args must be a JSON object"),
        (("check", "user:bob", "tool:x", "--args", "{path: 1}"), "--args is not valid JSON"),
        (("check", "user:carol", "tool:x"), "user 'carol' does not exist"),
        (("check", "team:x", "tool:x"), "unknown principal kind 'team'"),
        (("check", "user:bob", "tool:x", "--client", "ghost"), "client 'ghost' does not exist"),
        (("check", "client:app", "tool:x", "--client", "agent"), "leave out the client"),
        (("check", "user:bob", "tool:x*"), "a concrete target has no * or ?"),
        (("check", "user:bob", "files.read"), "needs a kind"),
    ],
)
def test_bad_check_input_exits_2(seeded, args, says):
    assert says in seeded.rejects(*args)


def test_subprocess_check_exit_codes(database_url, run_process):
    def run(*args: str):
        return run_process(database_url, *args)

    run("init")
    run("user", "add", "bob")
    gid = run("grant", "user:bob", "tool:x", "--note", "bob's tool")
    assert gid.returncode == 0 and gid.stdout.strip().isdigit()
    assert run("check", "user:bob", "tool:x").returncode == 0
    denied = run("check", "user:bob", "tool:y", "--json")
    assert denied.returncode == 1
    assert json.loads(denied.stdout)["allowed"] is False
    bad = run("check", "user:bob", "tool:x", "--args", "[]")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and bad.stderr.startswith("error: --args must be a JSON object")


def test_grants_table_escapes_control_characters_in_a_note(seeded):
    _grant(seeded, "role:analyst", "tool:files.*", "--note", "fine\n7  allow  user:mallory  tool:*\x1b[8m")
    shown = seeded.ok("grants")
    assert "fine\\n7" in shown and "\\x1b[8m" in shown and "\x1b" not in shown
    assert not any(line.lstrip().startswith("7  allow") for line in shown.splitlines())
