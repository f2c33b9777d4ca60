"""The demo seed: files, shop database, and a policy whose decisions differ per identity."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from mcp_acl.cli import app
from mcp_acl.demo import FILES, DemoError, seed_demo
from mcp_acl.gateway.specs import CallContext
from mcp_acl.gateway.toolload import builtin_tools_dir, load_tool_modules, tool_config_from_env
from mcp_acl.policy import Identity, decide, visible
from mcp_acl.store import PolicyAdmin, PolicyLoader

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
ALICE = Identity("alice", "mcp-acl-cli")
BOB = Identity("bob", "mcp-acl-cli")
ALICE_AGENT = Identity("alice", "ollama-agent")
BOB_AGENT = Identity("bob", "ollama-agent")
ALL_TOOLS = ("files.list", "files.read", "files.search", "files.write", "sql.tables", "sql.describe", "sql.select", "sql.execute")


@pytest.fixture
def seeded(engine, tmp_path):
    info = seed_demo(engine, tmp_path / "home")
    return info, PolicyLoader(engine)


def allowed(loader: PolicyLoader, who: Identity, target: str, args: dict | None = None) -> bool:
    return decide(loader.current(), who, target, args or {}, NOW).allowed


def test_seed_creates_the_workspace_and_the_shop(seeded):
    info, _ = seeded
    assert sorted(info.files_created) == sorted(FILES)
    assert (info.workspace / "hr" / "salaries.csv").read_text().startswith("name,role,salary_eur")
    with sqlite3.connect(info.shop_db) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("orders", "customers", "products")}
    assert counts == {"orders": 8, "customers": 3, "products": 3}


def test_every_grant_carries_a_note(seeded):
    info, _ = seeded
    assert len(info.grants) == 18
    assert all(g.note and g.note.endswith(".") for g in info.grants)


def test_alice_reads_reports_but_nothing_else(seeded):
    _, loader = seeded
    assert allowed(loader, ALICE, "tool:files.read", {"path": "reports/q3-sales.md"})
    assert not allowed(loader, ALICE, "tool:files.read", {"path": "hr/salaries.csv"})
    assert not allowed(loader, ALICE, "tool:files.read", {"path": "notes/todo.md"})
    assert allowed(loader, ALICE, "tool:files.list", {"path": "reports"})
    assert not allowed(loader, ALICE, "tool:files.list", {})
    assert allowed(loader, ALICE, "tool:files.search", {"query": "revenue", "path": "reports"})
    assert not allowed(loader, ALICE, "tool:files.search", {"query": "salary"})
    assert allowed(loader, ALICE, "resource:file:///reports/q3-sales.md")
    assert not allowed(loader, ALICE, "resource:file:///hr/salaries.csv")


def test_alice_selects_from_orders_only(seeded):
    _, loader = seeded
    assert allowed(loader, ALICE, "tool:sql.select", {"table": "orders"})
    assert not allowed(loader, ALICE, "tool:sql.select", {"table": "customers"})
    assert allowed(loader, ALICE, "tool:sql.tables")
    assert allowed(loader, ALICE, "tool:sql.describe", {"table": "customers"})


def test_nobody_writes(seeded):
    _, loader = seeded
    for who in (ALICE, BOB, ALICE_AGENT, BOB_AGENT):
        assert not allowed(loader, who, "tool:files.write", {"path": "reports/x.md", "content": "x"})
        assert not allowed(loader, who, "tool:sql.execute", {"statement": "DELETE FROM orders"})


def test_bob_only_lists_files(seeded):
    _, loader = seeded
    assert allowed(loader, BOB, "tool:files.list", {})
    assert allowed(loader, BOB, "tool:files.list", {"path": "hr"})
    for tool in ALL_TOOLS:
        if tool != "files.list":
            assert not allowed(loader, BOB, f"tool:{tool}", {"path": "reports/q3-sales.md", "table": "orders"}), tool
    assert not allowed(loader, BOB, "resource:file:///reports/q3-sales.md")


def test_both_roles_and_the_agent_may_get_the_policy_prompt(seeded):
    _, loader = seeded
    for who in (ALICE, BOB, ALICE_AGENT, BOB_AGENT):
        assert allowed(loader, who, "prompt:access-policy")


def test_the_agent_client_caps_alice_at_read_only_tools(seeded, engine):
    _, loader = seeded
    # Even a direct grant to alice cannot lift the agent's ceiling.
    PolicyAdmin(engine).add_grant("user:alice", "tool:files.write", note="alice may write")
    assert allowed(loader, ALICE, "tool:files.write", {"path": "reports/x.md", "content": "x"})
    assert not allowed(loader, ALICE_AGENT, "tool:files.write", {"path": "reports/x.md", "content": "x"})
    assert allowed(loader, ALICE_AGENT, "tool:files.read", {"path": "reports/q3-sales.md"})
    assert not allowed(loader, ALICE_AGENT, "tool:files.read", {"path": "hr/salaries.csv"})
    assert allowed(loader, ALICE_AGENT, "tool:sql.select", {"table": "orders"})
    assert not allowed(loader, ALICE_AGENT, "resource:file:///reports/q3-sales.md")


def test_the_agent_gives_bob_no_more_than_bob_has(seeded):
    _, loader = seeded
    assert allowed(loader, BOB_AGENT, "tool:files.list", {})
    assert not allowed(loader, BOB_AGENT, "tool:files.read", {"path": "reports/q3-sales.md"})


def test_visible_tools_differ_for_alice_and_bob(seeded):
    _, loader = seeded
    policy = loader.current()

    def tools(who):
        return {t for t in ALL_TOOLS if visible(policy, who, f"tool:{t}", NOW)}

    assert tools(ALICE) == {"files.list", "files.read", "files.search", "sql.tables", "sql.describe", "sql.select"}
    assert tools(BOB) == {"files.list"}
    assert tools(ALICE_AGENT) == tools(ALICE)


def test_the_tools_work_on_the_seeded_workspace_and_shop(seeded, monkeypatch):
    info, _ = seeded
    monkeypatch.delenv("MCP_ACL_FILES_ROOT", raising=False)
    monkeypatch.delenv("MCP_ACL_SQL_URL", raising=False)
    cat = load_tool_modules([builtin_tools_dir()], tool_config_from_env(info.home))
    ctx = CallContext(identity=ALICE)
    assert cat.tool("files.read").handler({"path": "reports/q3-sales.md"}, ctx).startswith("# Q3 sales")
    answer = cat.tool("sql.select").handler({"table": "orders", "filters": [{"column": "status", "op": "=", "value": "open"}], "columns": ["id"]}, ctx)
    assert answer == "id\n5\n6\n7\n(3 rows)"
    cat.tool("sql.select").handler.__self__.db.reader.dispose()


def test_only_the_demo_admin_may_use_the_console_and_it_sees_no_tool(seeded):
    _, loader = seeded
    policy, now = loader.current(), datetime.now(timezone.utc)
    admin = Identity("admin", "mcp-acl-console")
    assert decide(policy, admin, "admin:console", {}, now).allowed
    assert not decide(policy, ALICE, "admin:console", {}, now).allowed
    assert not decide(policy, BOB, "admin:console", {}, now).allowed
    assert not visible(policy, admin, "tool:files.list", now)


def test_seeding_twice_is_refused_and_changes_nothing(seeded, engine, tmp_path):
    revision = PolicyAdmin(engine).revision()
    with pytest.raises(DemoError, match=r"the policy is not empty \(3 users, 3 roles, 3 clients, 18 grants\)"):
        seed_demo(engine, tmp_path / "other")
    assert PolicyAdmin(engine).revision() == revision
    assert not (tmp_path / "other").exists()


def test_a_policy_with_one_user_is_not_seeded(engine, tmp_path):
    PolicyAdmin(engine).add_user("carol")
    with pytest.raises(DemoError, match=r"\(1 user\)"):
        seed_demo(engine, tmp_path / "home")


def test_existing_workspace_files_are_kept(engine, tmp_path):
    home = tmp_path / "home"
    (home / "workspace" / "reports").mkdir(parents=True)
    (home / "workspace" / "reports" / "q3-sales.md").write_text("mine")
    info = seed_demo(engine, home)
    assert "reports/q3-sales.md" not in info.files_created
    assert (home / "workspace" / "reports" / "q3-sales.md").read_text() == "mine"


def test_demo_command_initialises_seeds_and_refuses_a_second_time(sqlite_url, tmp_path):
    runner = CliRunner()
    home = tmp_path / "demo-home"
    first = runner.invoke(app, ["demo", "--database", sqlite_url, "--home", str(home)])
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith(f"demo seeded under {home}\n")
    assert "  users      alice (analyst), bob (intern), admin (admin)\n" in first.stdout
    assert "  clients    mcp-acl-cli (unrestricted), ollama-agent (restricted), mcp-acl-console (unrestricted)\n" in first.stdout
    second = runner.invoke(app, ["demo", "--database", sqlite_url, "--home", str(home)])
    assert second.exit_code == 2
    assert "the policy is not empty" in second.stderr
