"""Tool slots: hung tools take only their own threads; admissions and lists go on."""

from __future__ import annotations

import sys
import textwrap
import threading

import anyio
import anyio.to_thread
import pytest

from mcp_acl.gateway.runtime import build_gateway
from mcp_acl.gateway.slots import ToolSlots, ToolsBusy
from mcp_acl.gateway.toolload import builtin_tools_dir, load_tool_modules
from mcp_acl.store import PolicyAdmin

from .harness import connect, serve, text_of, wait_for

# `blocker.hold` waits on an event (bounded, so a broken test cannot keep
# the process alive). `blocker.squeeze` is async, so it runs on the
# server's event loop, where it shrinks anyio's default thread limiter to
# the number of tool slots: were tool handlers still on that limiter, the
# held calls would then fill it.
BLOCKER = '''
import threading

import anyio.to_thread
from mcp_acl.gateway.specs import ToolSpec

held = []
release = threading.Event()


def hold(args, ctx):
    held.append(ctx.identity.subject)
    release.wait(120)
    return "released"


async def squeeze(args, ctx):
    anyio.to_thread.current_default_thread_limiter().total_tokens = args["tokens"]
    return "squeezed"


def load(config):
    schema = {"type": "object", "properties": {"tokens": {"type": "integer"}}}
    return [
        ToolSpec(name="blocker.hold", description="Wait until released.", input_schema=schema, handler=hold),
        ToolSpec(name="blocker.squeeze", description="Shrink the default limiter.", input_schema=schema, handler=squeeze),
    ]
'''
SLOTS = 2
BUSY = f"Busy: all {SLOTS} tool slots are in use by other calls; try again in a moment."


@pytest.fixture
def blocked_world(world, tmp_path, monkeypatch):
    """The world with two tool slots, no waiting for one, and alice allowed the blocker tools."""
    monkeypatch.setenv("MCP_ACL_TOOL_THREADS", str(SLOTS))
    monkeypatch.setenv("MCP_ACL_TOOL_WAIT", "0")
    folder = tmp_path / "blocker"
    folder.mkdir()
    (folder / "blocker.py").write_text(textwrap.dedent(BLOCKER))
    admin = PolicyAdmin(world.engine)
    admin.add_grant("user:alice", "tool:blocker.*")
    admin.add_grant("role:intern", "tool:files.read", condition='args.path.startsWith("reports/")')
    gateway = build_gateway(world.settings, world.engine, load_tool_modules([builtin_tools_dir(), folder], world.tool_config()))
    module = sys.modules["mcp_acl_tools_1_blocker"]
    yield world, gateway, module
    module.release.set()


async def test_lists_and_decisions_go_on_while_every_tool_slot_is_held(blocked_world):
    world, gateway, blocker = blocked_world
    with serve(world, gateway) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice, connect(live.mcp_url, world.token("bob")) as bob:
            assert text_of(await alice.call_tool("blocker.squeeze", {"tokens": SLOTS})) == "squeezed"
            held: list = []
            try:
                async with anyio.create_task_group() as tg:
                    for _ in range(SLOTS):
                        tg.start_soon(lambda: _append(held, alice.call_tool("blocker.hold", {})))
                    await wait_for(lambda: len(blocker.held) == SLOTS)
                    # Every tool slot is held. A guard, not a measurement: without
                    # slots of their own these would wait for ever.
                    with anyio.fail_after(60):
                        listed = await bob.list_tools()
                        refused = await bob.call_tool("files.read", {"path": "notes/todo.txt"})
                        busy = await bob.call_tool("files.read", {"path": "reports/q3.md"})
                    blocker.release.set()
            finally:
                blocker.release.set()
    assert {tool.name for tool in listed.tools} == {"files.list", "files.read"}
    assert refused.is_error and text_of(refused).startswith("Refused: tool:files.read is not allowed to user bob")
    assert busy.is_error and text_of(busy) == BUSY
    assert [text_of(result) for result in held] == ["released"] * SLOTS
    outcomes = [row.outcome for row in world.audit_rows(kind="outcome")]
    assert outcomes.count("error") == 1 and outcomes.count("ok") == 1 + SLOTS


async def _append(into: list, call) -> None:
    into.append(await call)


# -- ToolSlots on its own


async def test_a_call_waits_for_a_slot_and_gets_it_when_one_frees():
    slots = ToolSlots(1, wait_seconds=600)
    release, order = threading.Event(), []

    def first():
        release.wait(120)
        order.append("first")

    async with anyio.create_task_group() as tg:
        tg.start_soon(slots.run_sync, first)
        await wait_for(lambda: slots._gate.value == 0)
        tg.start_soon(slots.run_sync, order.append, "second")
        await wait_for(lambda: slots._gate.statistics().tasks_waiting == 1)
        assert order == []
        release.set()
    assert order == ["first", "second"]


async def test_with_no_wait_a_call_is_refused_only_when_every_slot_is_taken():
    slots = ToolSlots(1, wait_seconds=0)
    assert await slots.run_sync(sum, [1, 2]) == 3
    release = threading.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(slots.run_sync, release.wait, 120)
        await wait_for(lambda: slots._gate.value == 0)
        with pytest.raises(ToolsBusy, match="Busy: all 1 tool slots are in use"):
            await slots.run_sync(sum, [1, 2])
        release.set()


async def test_tool_threads_never_borrow_from_the_default_thread_limiter():
    slots = ToolSlots(2)
    release = threading.Event()
    default = anyio.to_thread.current_default_thread_limiter()
    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(slots.run_sync, release.wait, 120)
        await wait_for(lambda: slots._threads.borrowed_tokens == 2)
        assert default.borrowed_tokens == 0
        release.set()


@pytest.mark.parametrize("size, wait", [(0, 1.0), (True, 1.0), (2, -1.0)])
def test_slots_refuse_a_size_below_one_or_a_negative_wait(size, wait):
    with pytest.raises(ValueError):
        ToolSlots(size, wait)
