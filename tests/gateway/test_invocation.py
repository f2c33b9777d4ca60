"""The invocation path's order and its failures: audit before the effect, errors never allow."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy import text

from mcp_acl.gateway.runtime import build_gateway
from mcp_acl.gateway.specs import ToolConfig
from mcp_acl.gateway.toolload import builtin_tools_dir, load_tool_modules
from mcp_acl.policy import Identity
from mcp_acl.prompting import unknown_tool_text
from mcp_acl.store import PolicyAdmin

from .harness import connect, serve, text_of, wait_for

# A tool that looks, from its own database connection, for the committed
# audit row deciding the very call it is running.
PROBE = '''
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from mcp_acl.gateway.specs import ToolSpec

def load(config):
    # NullPool: each check opens and closes its own connection.
    engine = create_engine(config.extra["audit_db"], poolclass=NullPool)

    def check(args, ctx):
        with engine.connect() as conn:
            row = conn.execute(text(
                "SELECT decision FROM audit_events WHERE kind = 'decision' AND target = 'tool:probe.check' "
                "ORDER BY id DESC LIMIT 1")).first()
        return f"audit row before run: {row.decision if row else 'missing'}"

    return [ToolSpec(name="probe.check", description="Report whether this call was audited.",
                     input_schema={"type": "object", "properties": {}}, handler=check)]
'''


def _gateway_with_probe(world, tmp_path):
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "probe.py").write_text(textwrap.dedent(PROBE))
    base = world.tool_config()
    config = ToolConfig(files_root=base.files_root, sql_url=base.sql_url, extra={"audit_db": world.database_url})
    PolicyAdmin(world.engine).add_grant("user:alice", "tool:probe.*")
    return build_gateway(world.settings, world.engine, load_tool_modules([builtin_tools_dir(), folder], config))


async def test_audit_row_is_committed_before_the_tool_runs(world, tmp_path):
    with serve(world, _gateway_with_probe(world, tmp_path)) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            result = await alice.call_tool("probe.check", {})
    assert text_of(result) == "audit row before run: allow"


async def test_call_is_refused_when_the_audit_row_cannot_be_written(sqlite_world):
    with sqlite_world.engine.begin() as conn:
        conn.execute(text(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit is full'); END"
        ))
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            result = await alice.call_tool("files.write", {"path": "drafts/plan.md", "content": "plan"})
    assert result.is_error
    assert text_of(result) == (
        "Refused: the decision could not be written to the audit log, and nothing runs unaudited."
    )
    assert not (sqlite_world.home / "workspace" / "drafts").exists()


async def test_unreadable_policy_refuses_lists_and_calls(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            assert (await alice.call_tool("files.list", {})).is_error is False
            with sqlite_world.engine.begin() as conn:
                conn.execute(text("DROP TABLE policy_revision"))
            with pytest.raises(MCPError, match="could not be read"):
                await alice.list_tools()
            refused = await alice.call_tool("files.list", {})
            missing = await alice.call_tool("no.such.tool", {})
    assert refused.is_error
    assert text_of(refused) == "Refused: the access policy could not be checked, so nothing is allowed until it can."
    assert text_of(missing) == text_of(refused)
    assert sqlite_world.audit_rows(kind="decision")[-1].decision == "deny"


async def test_tool_error_is_shown_to_the_caller_and_recorded(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            result = await alice.call_tool("files.read", {"path": "reports/missing.md"})
    assert result.is_error and not text_of(result).startswith("Refused")
    assert sqlite_world.audit_rows(kind="outcome")[-1].outcome == "error"


# -- where the admission runs (SQLite: on the event loop unless it must wait)


def _alice(world) -> Identity:
    return Identity("alice", "mcp-acl-cli", roles=frozenset({"analyst"}), issuer=world.settings.embedded_issuer_url)


def _count_thread_admissions(gateway, monkeypatch) -> list[int]:
    threaded: list[int] = []
    admit = gateway.invoker._admit

    def counted(*args):
        threaded.append(1)
        return admit(*args)

    monkeypatch.setattr(gateway.invoker, "_admit", counted)
    return threaded


async def test_on_sqlite_an_admission_runs_on_the_loop_when_nothing_waits(sqlite_world, monkeypatch):
    gateway = sqlite_world.gateway()
    gateway.invoker.policies.current()  # the first load is a reload: that one may wait
    threaded = _count_thread_admissions(gateway, monkeypatch)
    for _ in range(5):
        result = await gateway.invoker.call_tool(_alice(sqlite_world), None, "files.list", {})
        assert not result.is_error
    assert threaded == []
    assert [r.decision for r in sqlite_world.audit_rows(kind="decision")] == ["allow"] * 5
    gateway.invoker.close()


async def test_a_locked_sqlite_database_moves_the_admission_to_a_thread_that_waits(sqlite_world, monkeypatch):
    gateway = sqlite_world.gateway()
    gateway.invoker.policies.current()
    threaded = _count_thread_admissions(gateway, monkeypatch)
    holder = sqlite_world.engine.raw_connection()
    holder.driver_connection.execute("BEGIN IMMEDIATE")  # another writer holds the lock...
    released = threading.Timer(0.3, holder.driver_connection.rollback)  # ...for a moment
    released.start()
    try:
        result = await gateway.invoker.call_tool(_alice(sqlite_world), None, "files.list", {})
    finally:
        released.join()
        holder.close()
    assert not result.is_error
    assert threaded == [1]
    assert [r.decision for r in sqlite_world.audit_rows(kind="decision")] == ["allow"]
    gateway.invoker.close()


async def test_a_revocation_committed_elsewhere_refuses_the_next_loop_admission(sqlite_world):
    gateway = sqlite_world.gateway()
    gateway.invoker.policies.current()
    alice = _alice(sqlite_world)
    assert not (await gateway.invoker.call_tool(alice, None, "files.list", {})).is_error
    PolicyAdmin(sqlite_world.engine).revoke(sqlite_world.grants["alice-list"])
    refused = await gateway.invoker.call_tool(alice, None, "files.list", {})
    # The answer names what alice can use at this moment, which no longer includes files.list.
    still = gateway.invoker.views.tool_names(gateway.invoker.policies.current(), alice, gateway.invoker.clock())
    assert refused.is_error and "files.list" not in still
    assert text_of(refused) == unknown_tool_text("files.list", still)
    gateway.invoker.close()


async def test_admissions_on_the_loop_keep_the_sqlite_wal_checkpointed(sqlite_world):
    # The standing connection never checkpoints; every THREAD_TURN-th
    # admission's pooled commit does. Without that the WAL would grow by a
    # page or more per call (over 10 MB here).
    gateway = sqlite_world.gateway()
    gateway.invoker.policies.current()
    alice = _alice(sqlite_world)
    for _ in range(3000):
        await gateway.invoker.admit(alice, None, "tools/call", "tool:files.list", {}, True)
    wal = Path(sqlite_world.engine.url.database + "-wal")
    assert wal.stat().st_size < 6 * 1024 * 1024
    gateway.invoker.close()


async def test_a_prompt_that_fails_after_being_allowed_records_an_error_outcome(sqlite_world, monkeypatch):
    gateway = sqlite_world.gateway()

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr("mcp_acl.gateway.invocation.access_policy_text", broken)
    with pytest.raises(MCPError, match="internal error"):
        await gateway.invoker.get_prompt(_alice(sqlite_world), None, "access-policy", None)
    assert sqlite_world.audit_rows(kind="decision")[-1].decision == "allow"
    assert [r.outcome for r in sqlite_world.audit_rows(kind="outcome")] == ["error"]
    gateway.invoker.close()


# An async tool that waits until cancelled (leaving a file when it starts and
# one when it is cancelled), and one that reports progress when asked for it.
SLOW = '''
from pathlib import Path
import anyio
from mcp_acl.gateway.specs import ToolSpec

def load(config):
    marks = Path(config.extra["marks"])

    async def wait(args, ctx):
        (marks / "started").touch()
        try:
            await anyio.sleep_forever()
        finally:
            (marks / "ended").touch()

    async def steps(args, ctx):
        if ctx.progress is None:
            return "no progress asked for"
        for step in (1, 2):
            await ctx.progress(step, 2, f"step {step}")
        return "stepped"

    schema = {"type": "object", "properties": {}}
    return [ToolSpec(name="slow.wait", description="Waits until cancelled.", input_schema=schema, handler=wait),
            ToolSpec(name="slow.steps", description="Reports progress.", input_schema=schema, handler=steps)]
'''


def _gateway_with_slow_tools(world, tmp_path):
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "slow.py").write_text(textwrap.dedent(SLOW))
    base = world.tool_config()
    config = ToolConfig(files_root=base.files_root, sql_url=base.sql_url, extra={"marks": str(tmp_path)})
    PolicyAdmin(world.engine).add_grant("user:alice", "tool:slow.*")
    return build_gateway(world.settings, world.engine, load_tool_modules([builtin_tools_dir(), folder], config))


async def test_a_cancelled_call_stops_the_tool_and_records_an_error_outcome(sqlite_world, tmp_path):
    with serve(sqlite_world, _gateway_with_slow_tools(sqlite_world, tmp_path)) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            async with anyio.create_task_group() as tg:
                tg.start_soon(alice.call_tool, "slow.wait", {})
                await wait_for((tmp_path / "started").exists)
                tg.cancel_scope.cancel()
            await wait_for((tmp_path / "ended").exists)
            assert not (await alice.call_tool("files.list", {})).is_error
    rows = sqlite_world.audit_rows(target="tool:slow.wait")
    assert [r.decision for r in rows if r.decision] == ["allow"]
    assert [r.outcome for r in rows if r.outcome] == ["error"]


async def test_a_tool_reports_progress_to_a_caller_who_asked(sqlite_world, tmp_path):
    got: list[tuple] = []

    async def progress(done, total, message) -> None:
        got.append((done, total, message))

    with serve(sqlite_world, _gateway_with_slow_tools(sqlite_world, tmp_path)) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            assert text_of(await alice.call_tool("slow.steps", {}, progress_callback=progress)) == "stepped"
            await wait_for(lambda: len(got) == 2)
            assert text_of(await alice.call_tool("slow.steps", {})) == "no progress asked for"
    assert got == [(1, 2, "step 1"), (2, 2, "step 2")]
