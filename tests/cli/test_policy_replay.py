"""`mcp-acl policy replay` (and `policy shadow` under a real `serve`): a real audit log, made by real SDK clients, decided again under candidate files."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import anyio
import pytest
import yaml
from sqlalchemy import select

from gateway.harness import connect, serve, sqlite_world, wait_for  # noqa: F401 (fixture)
from mcp_acl.store import tables as t
from tests.cli.conftest import Cli
from tests.cli.test_serve import read_until, running


async def _calls(world, url: str) -> None:
    async with connect(url, world.token("alice")) as alice:
        await alice.call_tool("files.list", {})
        await alice.call_tool("files.read", {"path": "reports/q3.md"})
        await alice.call_tool("files.read", {"path": "notes/todo.txt"})
    async with connect(url, world.token("bob")) as bob:
        await bob.call_tool("files.list", {})
        await bob.call_tool("files.list", {})
        await bob.call_tool("files.read", {"path": "notes/todo.txt"})
        await bob.call_tool("no.such.tool", {})


@pytest.fixture
def audited(sqlite_world):
    """The test world after alice and bob made real calls through the real gateway."""
    with serve(sqlite_world) as live:
        anyio.run(_calls, sqlite_world, live.mcp_url)
    return sqlite_world


def _export(cli: Cli, tmp_path, change=None):
    doc = yaml.safe_load(cli.ok("policy", "export"))
    if change:
        change(doc)
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_the_stored_policy_as_candidate_flips_nothing(audited, tmp_path):
    cli = Cli(audited.database_url)
    result = cli("policy", "replay", str(_export(cli, tmp_path)))
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    # 7 calls: 6 decided by the policy (alice's two reads need their arguments), 1 unknown tool skipped.
    assert "replayed 7 audited calls" in first and "4 decided, 0 would flip, 2 undecidable, 1 skipped" in first
    assert "undecidable (the answer depends on arguments" in result.stdout
    assert "  tool:files.read  (2 calls)" in result.stdout


def _revoke_bob_list_allow_bob_read(doc):
    doc["grants"] = [g for g in doc["grants"] if (g["principal"], g["target"]) != ("role:intern", "tool:files.list")]
    doc["grants"].append({"principal": "role:intern", "target": "tool:files.read", "note": "interns read everything"})


def test_flips_are_grouped_by_target_and_grants_with_examples(audited, tmp_path):
    cli = Cli(audited.database_url)
    candidate = _export(cli, tmp_path, _revoke_bob_list_allow_bob_read)
    result = cli("policy", "replay", str(candidate), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["rows"], report["decided"], report["flipped"], report["undecidable"], report["skipped"]) == (7, 4, 3, 2, 1)
    lost, gained = report["flips"]
    assert (lost["from"], lost["to"], lost["target"], lost["calls"]) == ("allow", "deny", "tool:files.list", 2)
    assert lost["grant_was"] == f"#{audited.grants['bob-list']} allow role:intern tool:files.list"
    assert lost["grant_now"] is None
    assert [e["subject"] for e in lost["examples"]] == ["bob", "bob"]
    assert "no grant allows user bob to use tool:files.list" in lost["examples"][0]["reason_now"]
    assert (gained["from"], gained["to"], gained["target"], gained["calls"]) == ("deny", "allow", "tool:files.read", 1)
    assert gained["grant_was"] is None
    assert gained["grant_now"].endswith("allow role:intern tool:files.read") and "grants[" in gained["grant_now"]
    # bob's read had arguments, but an unconditional allow decides it whatever they were.
    assert "whatever the arguments" in gained["examples"][0]["reason_now"]
    assert report["undecidable_targets"] == [
        {"target": "tool:files.read", "calls": 2, "examples": report["undecidable_targets"][0]["examples"]}
    ]


def test_text_report_names_direction_target_grants_and_an_example(audited, tmp_path):
    cli = Cli(audited.database_url)
    result = cli("policy", "replay", str(_export(cli, tmp_path, _revoke_bob_list_allow_bob_read)))
    assert result.exit_code == 1
    text = result.stdout
    assert "allow→deny  tool:files.list  (2 calls)" in text
    assert "  now: no grant (default deny)" in text
    assert "deny→allow  tool:files.read  (1 call)" in text
    assert "user bob via mcp-acl-cli: tool:files.read is allowed to user bob by grant" in text
    # The news first: calls that would stop working.
    assert text.index("allow→deny") < text.index("deny→allow")


def test_since_limits_the_calls_replayed(audited, tmp_path):
    cli = Cli(audited.database_url)
    candidate = str(_export(cli, tmp_path, _revoke_bob_list_allow_bob_read))
    assert json.loads(cli("policy", "replay", candidate, "--since", "1h", "--json").stdout)["rows"] == 7
    later = cli("policy", "replay", candidate, "--since", "2999-01-01", "--json")
    assert later.exit_code == 0 and json.loads(later.stdout)["rows"] == 0


@pytest.mark.parametrize(
    "content, says",
    [
        (None, "cannot read"),
        ("grants: [\n", "not valid YAML"),
        ("grants:\n  - {principal: role:x, target: 'tool:a', when: 'args.('}\n", "grants[0].when: condition 'args.(' does not compile"),
        ("grants:\n  - {principal: nobody, target: 'tool:a'}\n", "grants[0].principal"),
        ("grants:\n  - {principal: role:x, target: 'tool:a', effect: maybe}\n", "grants[0].effect: expected allow or deny"),
        ("colour: blue\n", "colour"),
        # The candidate is the whole policy: names it does not list are refused as an import into
        # an empty database refuses them, not compiled into grants that decide for nobody.
        ("roles: [x]\ngrants:\n  - {principal: role:x, target: 'tool:a'}\n  - {principal: user:alcie, target: 'tool:a'}\n",
         "grants[1]: user 'alcie' is not in the file; a candidate is the whole policy, so list it under users"),
        ("users:\n  - {name: ada, roles: [analyst]}\n", "users[0]: role 'analyst' is not in the file"),
        ("grants:\n  - {principal: 'client:bench-cli', target: 'tool:a'}\n", "grants[0]: client 'bench-cli' is not in the file"),
    ],
)
def test_a_bad_candidate_is_one_line_and_exit_2(audited, tmp_path, content, says):
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    line = Cli(audited.database_url).rejects("policy", "replay", str(path))
    assert says in line


def test_a_bad_since_is_one_line_and_exit_2(audited, tmp_path):
    cli = Cli(audited.database_url)
    assert "--since" in cli.rejects("policy", "replay", str(_export(cli, tmp_path)), "--since", "last tuesday")


def test_real_serve_with_a_shadow_then_report_and_replay(sqlite_world, tmp_path, subprocess_env):
    def mcp_acl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mcp_acl", *args, "--database", sqlite_world.database_url],
                              env=subprocess_env, capture_output=True, text=True, timeout=120, check=False)

    cli = Cli(sqlite_world.database_url)
    candidate = str(_export(cli, tmp_path, _revoke_bob_list_allow_bob_read))
    with running(subprocess_env, "serve", "--port", "0", "--database", sqlite_world.database_url) as (proc, lines):
        url = re.search(r"http://127\.0\.0\.1:\d+/mcp", read_until(proc, lines, "mcp-acl serving")).group(0)
        # Set while the server runs: it reaches the serving process through the policy revision.
        assert "is in force" in cli.ok("policy", "shadow", candidate)
        anyio.run(_calls, sqlite_world, url)

        def recorded() -> int:
            with sqlite_world.engine.connect() as conn:
                return len(conn.execute(select(t.shadow_differences)).all()) >= 3

        anyio.run(wait_for, recorded, 60)
    done = cli("policy", "shadow", "report", "--json")
    assert done.exit_code == 1, done.output
    report = json.loads(done.stdout)
    # Live, the gateway has the arguments: alice's reads are decided too (and agree), bob's three calls flip.
    assert [(g["from"], g["target"], g["calls"]) for g in report["flips"]] == [("allow", "tool:files.list", 2), ("deny", "tool:files.read", 1)]
    replayed = mcp_acl("policy", "replay", candidate)
    assert replayed.returncode == 1, replayed.stderr
    assert "allow→deny  tool:files.list  (2 calls)" in replayed.stdout
