"""ollama-mcp-bridge, installed from PyPI into its own environment, in front of mcp-acl.

The bridge is an HTTP proxy that speaks Ollama's API: a chat sent to it reaches Ollama with the MCP
servers' tools added, and the tool calls the model makes are run by the bridge itself. It connects to its
MCP servers once, at start, with the static headers of its configuration file: one bridge holds one
identity, so each user runs their own, with their own token. These tests drive it the way an application
does, with the real `ollama` Python client, against the scripted Ollama.

What the bridge does not do, and what mcp-acl does about it: it never re-reads the tool list (it ignores
`list_changed`), so a revoked grant still shows in the tools it offers the model, and mcp-acl refuses the
call; it has no sign-in and no token refresh, and when its personal token is revoked the request hangs in
the bridge (its MCP SDK waits on the 401), while mcp-acl runs nothing and audits the refusal.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import anyio
import httpx2
import ollama
import pytest

from clients.conftest import ALICE_TOOLS, BOB_TOOLS, MODEL, Stage, write_json
from support.installs import installed
from gateway.harness import wait_for
from mcp_acl.store import PolicyAdmin
from support.ollama_double import call, say

# The version these tests were written against (docs/clients.md records it too).
PACKAGE, VERSION = "ollama-mcp-bridge", "0.12.2"
REVOKED = "the personal access token 'bridge' was revoked"  # how mcp-acl audits the refusal
SERVER = "acl"  # the key in the bridge's mcpServers; it prefixes the tool names: acl.files.read


@pytest.fixture(scope="session")
def bridge_program() -> Path:
    return installed(PACKAGE, VERSION, "ollama-mcp-bridge")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_bridge(program: Path, stage: Stage, token: str, folder: Path) -> Iterator[str]:
    """The bridge for one user (the recipe in docs/clients.md), on loopback; yields its base URL."""
    folder.mkdir()
    config = folder / "mcp-config.json"
    # The token stays out of the file: the bridge expands ${env:NAME} in it.
    write_json(config, {"mcpServers": {SERVER: {
        "url": stage.live.mcp_url, "headers": {"Authorization": "Bearer ${env:MCP_ACL_TOKEN}"}}}})
    port = _free_port()
    env = {**os.environ, "MCP_ACL_TOKEN": token}
    log = folder / "bridge.log"
    argv = [str(program), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--ollama-url", stage.ollama_url]
    with log.open("w") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a guard against a bridge that never comes up, not a measurement
        while True:
            try:
                if httpx2.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the bridge did not start; its log ends with:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ask(base: str, question: str) -> str:
    """One chat through the bridge with the real `ollama` client; the model's last answer."""
    with ollama.Client(host=base) as client:
        return client.chat(model=MODEL, messages=[{"role": "user", "content": question}]).message.content


def names(tools: set[str]) -> set[str]:
    return {f"{SERVER}.{name}" for name in tools}


def test_each_user_through_their_own_bridge_sees_their_catalogue_and_every_call_is_decided(stage, bridge_program, tmp_path):
    with running_bridge(bridge_program, stage, stage.mint("alice"), tmp_path / "alice") as alice, \
            running_bridge(bridge_program, stage, stage.mint("bob"), tmp_path / "bob") as bob:
        # Allowed: the bridge runs alice's call through mcp-acl and hands the result to the model.
        stage.ollama.add(call("acl.files.read", path="reports/q3.md"), say("Revenue grew."))
        assert ask(alice, "How did Q3 go?") == "Revenue grew."
        assert stage.offered() == names(ALICE_TOOLS)
        assert "Revenue grew 12%" in stage.tool_messages()[-1]["content"]
        # Refused by mcp-acl (the grant's condition): the model reads the refusal as the tool's answer.
        stage.ollama.add(call("acl.files.read", path="notes/todo.txt"), say("I may not read that."))
        assert ask(alice, "What is on my to-do list?") == "I may not read that."
        assert stage.tool_messages()[-1]["content"].startswith("Refused: tool:files.read")
        # Bob's bridge offers bob's catalogue only.
        stage.ollama.add(call("acl.files.list"), say("Two folders."))
        assert ask(bob, "What is there?") == "Two folders."
        assert stage.offered() == names(BOB_TOOLS)
        assert "reports" in stage.tool_messages()[-1]["content"]
    assert stage.decisions("alice") == [("tools/call", "tool:files.read", "allow"), ("tools/call", "tool:files.read", "deny")]
    assert stage.decisions("bob") == [("tools/call", "tool:files.list", "allow")]


def test_the_bridge_ignores_list_changed_and_mcp_acl_still_decides_each_call(stage, bridge_program, tmp_path):
    admin = PolicyAdmin(stage.world.engine, actor="test")
    with running_bridge(bridge_program, stage, stage.mint("alice"), tmp_path / "alice") as alice, \
            running_bridge(bridge_program, stage, stage.mint("bob"), tmp_path / "bob") as bob:
        admin.revoke(stage.world.grants["alice-read"])
        admin.add_grant("role:intern", "tool:sql.select")
        # The bridge listed tools once, at start: it still offers files.read, and mcp-acl refuses the call.
        stage.ollama.add(call("acl.files.read", path="reports/q3.md"), say("Refused, it says."))
        assert ask(alice, "How did Q3 go?") == "Refused, it says."
        assert "acl.files.read" in stage.offered()
        assert stage.tool_messages()[-1]["content"].startswith("No tool named files.read is available to you.")
        # Bob's new grant does not reach the running bridge either: only a restart lists again.
        stage.ollama.add(say("No SQL here."))
        ask(bob, "Any orders?")
        assert stage.offered() == names(BOB_TOOLS)
    # mcp-acl answers a call to a tool it no longer lists as for a tool that does not exist, and audits it.
    assert stage.decisions("alice") == [("tools/call", "tool:files.read", "deny")]
    with running_bridge(bridge_program, stage, stage.mint("bob"), tmp_path / "bob-again") as bob:
        stage.ollama.add(say("Now there is SQL."))
        ask(bob, "Any orders?")
        assert stage.offered() == names(BOB_TOOLS | {"sql.select"})


async def test_a_revoked_personal_token_stops_the_bridge_at_the_next_call(stage, bridge_program, tmp_path):
    token = stage.personal_token("alice", "bridge")
    with running_bridge(bridge_program, stage, token, tmp_path / "alice") as alice, \
            running_bridge(bridge_program, stage, stage.personal_token("bob", "bridge-bob"), tmp_path / "bob") as bob:
        stage.ollama.add(call("acl.files.list"), say("Two folders."))
        assert ask(alice, "What is there?") == "Two folders."
        stage.admin("token", "revoke", "bridge")
        stage.ollama.add(call("acl.files.read", path="reports/q3.md"), say("Never said."))
        async with httpx2.AsyncClient(base_url=alice, timeout=None) as http, anyio.create_task_group() as tasks:
            # The bridge's SDK waits forever on the 401, so the chat never ends: the test watches the audit
            # trail instead and then hangs up (the bridge then cancels the request itself).
            chat = {"model": MODEL, "messages": [{"role": "user", "content": "How did Q3 go?"}], "stream": False}
            tasks.start_soon(partial(http.post, "/api/chat", json=chat))
            await wait_for(lambda: REVOKED in " ".join(stage.refused_requests()), timeout=60)
            tasks.cancel_scope.cancel()
        # Nothing ran after the revocation: no new tool decision, no new result for the model.
        # Bob's bridge, with his own token, still works.
        assert [d for d in stage.decisions("alice") if d[0] == "tools/call"] == [("tools/call", "tool:files.list", "allow")]
        assert len(stage.tool_messages()) == 1
        stage.ollama.script.clear()
        stage.ollama.add(call("acl.files.list"), say("Still here."))
        assert ask(bob, "What is there?") == "Still here."
    # A bridge (re)started with the revoked token connects to nothing: it offers the model no tools at all.
    with running_bridge(bridge_program, stage, token, tmp_path / "alice-again") as alice:
        assert httpx2.get(f"{alice}/health").json()["tools"] == 0
