"""Shadow policies: the running gateway decides every call under a candidate too, never enforcing it.

The real app under uvicorn, the SDK's real client, real tokens; the
candidate is set with the real CLI while the gateway runs, so it reaches
the gateway the way any policy change does (the revision and its change log).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import anyio
import pytest
import yaml
from alembic import command
from sqlalchemy import inspect, insert, select

from gateway.harness import connect, serve, sqlite_world, text_of, wait_for, world  # noqa: F401 (fixtures)
from mcp_acl.store import PolicyLoader, make_engine, upgrade
from mcp_acl.store import tables as t
from mcp_acl.store.migrate import alembic_config, current_heads
from tests.cli.conftest import Cli, snapshot
from tests.store.heads import script_heads


def _candidate(cli: Cli, tmp_path, change) -> str:
    doc = yaml.safe_load(cli.ok("policy", "export"))
    change(doc)
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _no_bob_list_and_bob_reads(doc) -> None:
    doc["grants"] = [g for g in doc["grants"] if (g["principal"], g["target"]) != ("role:intern", "tool:files.list")]
    doc["grants"].append({"principal": "role:intern", "target": "tool:files.read"})


def _differences(engine) -> list:
    with engine.connect() as conn:
        return list(conn.execute(select(t.shadow_differences).order_by(t.shadow_differences.c.id)))


async def _bob_calls(url: str, token: str) -> list[tuple[bool, str]]:
    async with connect(url, token) as bob:
        listed = await bob.call_tool("files.list", {})
        read = await bob.call_tool("files.read", {"path": "notes/todo.txt"})
        missing = await bob.call_tool("no.such.tool", {})
    return [(r.is_error, text_of(r)) for r in (listed, read, missing)]


def test_shadow_records_differences_without_changing_any_call(world, tmp_path):
    cli = Cli(world.database_url)
    with serve(world) as live:
        before = anyio.run(_bob_calls, live.mcp_url, world.token("bob"))
        assert _differences(world.engine) == []
        assert "is in force" in cli.ok("policy", "shadow", _candidate(cli, tmp_path, _no_bob_list_and_bob_reads))
        after = anyio.run(_bob_calls, live.mcp_url, world.token("bob"))
        # Enforced as before: the list still works, the read is still refused, the unknown tool unknown.
        assert [e for e, _ in after] == [e for e, _ in before] == [False, True, True]
        assert after[1][1] == before[1][1]
        rows = anyio.run(wait_for, lambda: (found := _differences(world.engine)) and len(found) >= 2 and found)
    assert [(r.target, r.decision, r.subject) for r in rows] == [("tool:files.list", "allow", "bob"), ("tool:files.read", "deny", "bob")]
    audited = {r.id: r for r in world.audit_rows(kind="decision", subject="bob")}
    assert all(audited[r.audit_id].target == r.target for r in rows)
    report = cli("policy", "shadow", "report", "--json")
    assert report.exit_code == 1, report.output
    shown = json.loads(report.stdout)
    assert shown["shadow"]["source"].endswith("candidate.yaml") and shown["shadow"]["stopped_at"] is None
    assert [(g["from"], g["to"], g["target"], g["calls"]) for g in shown["flips"]] == [
        ("allow", "deny", "tool:files.list", 1), ("deny", "allow", "tool:files.read", 1),
    ]
    assert shown["flips"][0]["grant_was"] == f"#{world.grants['bob-list']} allow role:intern tool:files.list"
    assert shown["flips"][1]["grant_now"].endswith("allow role:intern tool:files.read")
    text = cli("policy", "shadow", "report").stdout
    assert "1 call decided otherwise" not in text and "2 calls decided otherwise" in text
    assert "allow→deny  tool:files.list  (1 call)" in text and "deny→allow  tool:files.read  (1 call)" in text


def test_shadow_off_stops_recording_and_the_report_keeps_what_was_recorded(sqlite_world, tmp_path):
    cli = Cli(sqlite_world.database_url)
    cli.ok("policy", "shadow", _candidate(cli, tmp_path, _no_bob_list_and_bob_reads))
    with serve(sqlite_world) as live:
        anyio.run(_bob_calls, live.mcp_url, sqlite_world.token("bob"))
        anyio.run(wait_for, lambda: len(_differences(sqlite_world.engine)) >= 2)
        assert cli.ok("policy", "shadow", "off").startswith("stopped shadow policy #1")
        anyio.run(_bob_calls, live.mcp_url, sqlite_world.token("bob"))
    # The server has stopped: its recorder drained, and nothing more was recorded.
    assert len(_differences(sqlite_world.engine)) == 2
    assert "stopped" in cli("policy", "shadow", "report").stdout
    assert cli.ok("policy", "shadow", "off").strip() == "no shadow policy is in force"
    assert "stopped" in cli.ok("policy", "shadow")


def test_a_candidate_that_no_longer_compiles_shadows_nothing_and_enforcement_goes_on(sqlite_world):
    # Written past the CLI's validation, as a newer version's file might be.
    with sqlite_world.engine.begin() as conn:
        conn.execute(insert(t.policy_shadows).values(
            document="grants:\n  - {principal: role:x, target: 'tool:a', when: 'args.('}\n", source="broken.yaml",
            started_at=datetime.now(timezone.utc)))
    assert PolicyLoader(sqlite_world.engine).current().shadow is None
    with serve(sqlite_world) as live:
        calls = anyio.run(_bob_calls, live.mcp_url, sqlite_world.token("bob"))
    assert [e for e, _ in calls] == [False, True, True]
    assert _differences(sqlite_world.engine) == []


def test_setting_and_stopping_a_shadow_reaches_a_running_loader_incrementally(sqlite_world, tmp_path):
    cli = Cli(sqlite_world.database_url)
    loader = PolicyLoader(sqlite_world.engine)
    assert loader.current().shadow is None
    cli.ok("policy", "shadow", _candidate(cli, tmp_path, _no_bob_list_and_bob_reads))
    shadow = loader.current().shadow
    assert shadow is not None and shadow.id == 1 and loader.loads == {"full": 1, "incremental": 1}
    cli.ok("grant", "user:bob", "tool:files.write")
    assert loader.current().shadow is shadow  # carried through other changes, compiled once
    assert PolicyLoader(sqlite_world.engine).current().shadow.id == 1  # a full load finds it too
    cli.ok("policy", "shadow", "off")
    assert loader.current().shadow is None and loader.loads["full"] == 1


@pytest.mark.parametrize(
    "content, says",
    [
        (None, "cannot read"),
        ("grants:\n  - {principal: role:x, target: 'tool:a', when: 'args.('}\n", "grants[0].when"),
        ("[]\n", "expected a mapping"),
    ],
)
def test_a_bad_candidate_is_refused_in_one_line_and_nothing_is_written(sqlite_world, tmp_path, content, says):
    cli = Cli(sqlite_world.database_url)
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    assert says in cli.rejects("policy", "shadow", str(path))
    with sqlite_world.engine.connect() as conn:
        assert conn.execute(select(t.policy_shadows)).all() == []


def test_report_without_any_shadow_says_so(sqlite_world):
    cli = Cli(sqlite_world.database_url)
    assert "no shadow policy has been set" in cli.ok("policy", "shadow", "report")
    assert json.loads(cli.ok("policy", "shadow", "report", "--json")) == {"shadow": None, "flips": []}


def test_0015_adds_and_removes_the_shadow_tables(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert {"policy_shadows", "shadow_differences"} <= set(inspect(engine).get_table_names())
        command.downgrade(alembic_config(engine), "0011")
        assert current_heads(engine) == {"0011"}
        assert not {"policy_shadows", "shadow_differences"} & set(inspect(engine).get_table_names())
        upgrade(engine)
        assert current_heads(engine) == script_heads(engine)
    finally:
        engine.dispose()


def test_rejected_shadow_leaves_the_policy_as_it_was(sqlite_world, tmp_path):
    before = snapshot(sqlite_world.database_url)
    path = tmp_path / "bad.yaml"
    path.write_text("grants: 3\n")
    Cli(sqlite_world.database_url).rejects("policy", "shadow", str(path))
    assert snapshot(sqlite_world.database_url) == before


async def test_a_held_call_decided_again_is_never_observed_twice_whoever_pays_for_it(sqlite_world, tmp_path):
    # Held calls are observed when they are asked for. Decided again at release (or on a retry naming
    # the request) they are not, whether the ask's count pays for that run or was taken already:
    # who pays is a quota matter, not whether the candidate has seen the call.
    from mcp_acl.gateway.holds import Redecided
    from mcp_acl.policy import Identity
    from mcp_acl.store import PolicyAdmin
    from mcp_acl.store.approvals import ApprovalRequest
    from mcp_acl.store.shadow import set_shadow

    world = sqlite_world
    cli = Cli(world.database_url)
    candidate = Path(_candidate(cli, tmp_path, _no_bob_list_and_bob_reads))
    set_shadow(PolicyAdmin(world.engine), candidate.read_text(), str(candidate))
    invoker = world.gateway().invoker
    bob = Identity("bob", "mcp-acl-cli", frozenset({"intern"}))
    now = datetime.now(timezone.utc)
    request = ApprovalRequest(
        id="r1", status="approved", grant_id=world.grants["bob-list"], grant_created_at=None, approval_by="admins",
        subject="bob", client_id="mcp-acl-cli", action="tools/call", target="tool:files.list", args_digest="", args={},
        created_at=now, expires_at=now, decided_by="carol", decided_at=now, reason=None, valid_until=None, decision_audit_id=None,
    )

    async def admitted(held) -> int:
        admission, _ = await invoker.admit(bob, None, "tools/call", "tool:files.list", {}, True, held=held)
        assert admission.decision.allowed  # enforced as stored; the candidate would refuse it
        await invoker.shadow.flush()
        return len(_differences(world.engine))

    assert await admitted(None) == 1  # asked for: observed
    assert await admitted(Redecided(request, prepaid=True)) == 1
    assert await admitted(Redecided(request, prepaid=False)) == 1
